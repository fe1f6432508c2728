"""``dockyard cp``: between a container's filesystem and the host, as tar over the archive API.

``CONTAINER:SRC DEST``: GET /containers/{id}/archive?path=SRC -> a tar whose root entry is
SRC's basename; extracted into DEST if DEST is a directory, else renamed to DEST. ``-`` as DEST
writes the tar to stdout. ``SRC CONTAINER:DEST``: the host path is tarred (root entry named for
where it lands) and PUT to DEST's directory; ``-`` as SRC reads a tar from stdin. Extraction
uses tarfile's "tar" filter: no absolute paths, no ``..``, no links out of DEST.
"""

from __future__ import annotations

import io
import os
import sys
import tarfile

from dockyard.cli.common import Globals, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _split(arg: str) -> tuple[str | None, str]:
    if arg.startswith((".", "/")) or ":" not in arg:
        return None, arg
    c, _, p = arg.partition(":")
    return c, p


def _stat(g: Globals, cid: str, path: str) -> dict[str, Any] | None:
    import base64
    import json

    from dockyard import errors
    try:
        resp = g.client.request("HEAD", f"/containers/{cid}/archive", {"path": path})
    except errors.NotFound:
        return None
    resp.read()
    raw = resp.getheader("X-Docker-Container-Path-Stat")
    return json.loads(base64.b64decode(raw)) if raw else {}


def copy(g: Globals, src: str, dst: str, *, follow: bool, quiet: bool) -> int:
    sc, sp = _split(src)
    dc, dp = _split(dst)
    if (sc is None) == (dc is None):
        raise UsageError("copying between containers is not supported" if sc else
                         "must specify at least one container source")
    if sc is not None:
        return _from_container(g, sc, sp, dp)
    assert dc is not None
    return _to_container(g, sp, dc, dp, follow)


def _from_container(g: Globals, cid: str, path: str, dest: str) -> int:
    resp = g.client.request("GET", f"/containers/{cid}/archive", {"path": path})
    if dest == "-":
        while chunk := resp.read(1 << 20):
            sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
        return 0
    data = io.BytesIO(resp.read())
    with tarfile.open(fileobj=data, mode="r:*") as tf:
        members = tf.getmembers()
        if not members:
            return 0
        root = members[0].name.split("/")[0]
        if os.path.isdir(dest):
            target_dir = dest
        else:
            parent = os.path.dirname(os.path.abspath(dest))
            if not os.path.isdir(parent):
                raise UsageError(f"destination directory {parent!r} must exist")
            if path.endswith("/") and members[0].isfile():
                raise UsageError(f"{path}: not a directory")
            target_dir = parent
            new = os.path.basename(dest.rstrip("/"))
            for m in members:
                m.name = new + m.name[len(root):] if m.name.split("/")[0] == root else m.name
        tf.extractall(target_dir, members=members, filter="tar")
    return 0


def _to_container(g: Globals, src: str, cid: str, path: str, follow: bool) -> int:
    if src == "-":
        body = sys.stdin.buffer.read()
        g.client.request("PUT", f"/containers/{cid}/archive", {"path": path}, body=body).read()
        return 0
    if not os.path.lexists(src):
        raise UsageError(f"lstat {os.path.abspath(src)}: no such file or directory")
    st = _stat(g, cid, path)
    if st is not None and (st.get("mode", 0) & (1 << 31)):  # Go's os.ModeDir bit: an existing dir
        target, name = path, os.path.basename(os.path.normpath(src))
    else:
        target, name = os.path.dirname(path.rstrip("/")) or "/", os.path.basename(path.rstrip("/"))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", dereference=follow) as tf:
        tf.add(src, arcname=name)
    g.client.request("PUT", f"/containers/{cid}/archive", {"path": target}, body=buf.getvalue()).read()
    return 0
