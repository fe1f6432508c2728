"""``dockyard build``: tar the context (honouring .dockerignore), POST /build, show the stream."""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile

from dockyard.cli.common import Globals, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _ignored(context: str) -> Any:
    import fnmatch
    path = os.path.join(context, ".dockerignore")
    pats: list[tuple[bool, str]] = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    neg = line.startswith("!")
                    pats.append((neg, os.path.normpath(line.lstrip("!").strip("/"))))

    def check(rel: str) -> bool:
        hit = False
        for neg, p in pats:
            if fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(rel, p + "/*") or rel.startswith(p + "/"):
                hit = not neg
        return hit
    return check


def build(g: Globals, o: dict[str, Any], path: str) -> int:
    from dockyard import errors
    from dockyard.cli.progress import display
    if path == "-":
        body = sys.stdin.buffer.read()
        dockerfile = o["file"]
    else:
        if not os.path.isdir(path):
            raise UsageError(f'unable to prepare context: path "{path}" not found')
        dockerfile = o["file"]
        ignored = _ignored(path)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            def filt(ti: tarfile.TarInfo) -> tarfile.TarInfo | None:
                rel = os.path.normpath(ti.name)
                if rel != "." and ignored(rel) and rel not in ("Dockerfile", ".dockerignore"):
                    return None
                ti.uid = ti.gid = 0
                ti.uname = ti.gname = ""
                return ti
            tf.add(path, arcname=".", filter=filt)
            if dockerfile and dockerfile != "-" and not os.path.abspath(dockerfile).startswith(
                    os.path.abspath(path) + os.sep):
                tf.add(dockerfile, arcname=".dockyard.Dockerfile")
                dockerfile = ".dockyard.Dockerfile"
            elif dockerfile == "-":
                data = sys.stdin.buffer.read()
                ti = tarfile.TarInfo(".dockyard.Dockerfile")
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
                dockerfile = ".dockyard.Dockerfile"
            elif dockerfile:
                dockerfile = os.path.relpath(dockerfile, path)
        body = buf.getvalue()
    args = dict(a.split("=", 1) if "=" in a else (a, os.environ.get(a, "")) for a in o["build_arg"])
    labels = dict(x.split("=", 1) if "=" in x else (x, "") for x in o["label"])
    query: dict[str, Any] = {"t": o["tag"] or None, "nocache": o["no_cache"], "q": o["quiet"],
                             "buildargs": json.dumps(args) if args else None, "target": o["target"],
                             "labels": json.dumps(labels) if labels else None, "pull": o["pull"] or None,
                             "rm": o["rm"] != "false", "forcerm": o["force_rm"] or None,
                             "networkmode": o["network"], "dockerfile": dockerfile, "version": "1",
                             "extrahosts": ",".join(o["add_host"]) or None}
    try:
        resp = g.client.request("POST", "/build", query, body=body,
                                headers={"X-Registry-Config": "e30="})
    except errors.DockyardError as e:
        from dockyard.cli.common import daemon_error
        daemon_error(e)
        return 1
    found: dict[str, str] = {}

    def tee() -> Any:
        for raw in resp:
            if raw.strip():
                try:
                    m = json.loads(raw)
                except ValueError:
                    continue
                if (m.get("aux") or {}).get("ID"):
                    found["id"] = m["aux"]["ID"]
                elif o["quiet"] and m.get("stream", "").strip().startswith("sha256:"):
                    found.setdefault("id", m["stream"].strip())
                if o["quiet"] and not m.get("error"):
                    continue  # -q: only errors and the image id are shown
                yield raw
    rc = display(tee(), sys.stdout)
    image_id = found.get("id", "")
    if o["quiet"] and rc == 0:
        sys.stdout.write(image_id + "\n")
    if o["iidfile"] and image_id:
        with open(o["iidfile"], "w") as f:
            f.write(image_id)
    return rc
