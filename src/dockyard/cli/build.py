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


def context_tar(context: str, dockerfile: str | None) -> tuple[bytes, str | None]:
    """The build context as docker's CLI sends it: .dockerignore (or ``<Dockerfile>.dockerignore``)
    applied with docker's matching rules, the Dockerfile and .dockerignore always included, and a
    Dockerfile from outside the context (or stdin) added under a private name. Returns the tar
    and the Dockerfile's name inside it."""
    from pathlib import Path

    from dockyard.builder import dockerignore

    ctx = Path(context)
    outside = bool(dockerfile) and dockerfile != "-" and not os.path.abspath(dockerfile).startswith(
        os.path.abspath(context) + os.sep)
    rel_df = "Dockerfile"
    if dockerfile and dockerfile != "-" and not outside:
        rel_df = os.path.relpath(dockerfile, context)
    patterns = dockerignore.load_patterns(ctx, dockerfile if dockerfile and dockerfile != "-" else "Dockerfile")
    patterns = dockerignore.keep_build_files(patterns, rel_df)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        def add(src: str, arcname: str) -> None:
            ti = tf.gettarinfo(src, arcname=arcname)
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = ""
            if ti.isreg():
                with open(src, "rb") as f:
                    tf.addfile(ti, f)
            else:
                tf.addfile(ti)

        for entry in dockerignore.walk_context(ctx, patterns):
            add(str(ctx / entry.path), entry.path)
        name: str | None = rel_df if dockerfile else None
        if outside:
            add(dockerfile, ".dockyard.Dockerfile")  # type: ignore[arg-type]
            name = ".dockyard.Dockerfile"
        elif dockerfile == "-":
            data = sys.stdin.buffer.read()
            ti = tarfile.TarInfo(".dockyard.Dockerfile")
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
            name = ".dockyard.Dockerfile"
    return buf.getvalue(), name


def build(g: Globals, o: dict[str, Any], path: str) -> int:
    from dockyard import errors
    from dockyard.cli.progress import display
    if path == "-":
        body = sys.stdin.buffer.read()
        dockerfile = o["file"]
    else:
        if not os.path.isdir(path):
            raise UsageError(f'unable to prepare context: path "{path}" not found')
        body, dockerfile = context_tar(path, o["file"])
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
