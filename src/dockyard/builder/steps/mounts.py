"""``RUN --mount`` specifications -> the extra OCI mounts of the step's container.

``prepare_mounts(instr, ...)`` returns :class:`steps.run.RunMount` entries; whatever it
creates lives in ``private`` (a temp dir of the step, removed with it) or in ``stack``:

* ``cache``: a persistent directory of the build cache (``BuildCache.mount_dir(id or
  target)``), read-write, shared by every build; ``uid``/``gid``/``mode`` apply when it is new;
* ``bind``: a path of the build context (default) or of another stage/image (``from=``,
  mounted read-only via ``source_root``), resolved inside that root; read-only by default, a
  ``rw`` bind gets a private copy (writes are discarded, as BuildKit does);
* ``tmpfs``: a tmpfs (``size=``);
* ``secret``: the bytes the caller passed for ``id`` in a private file (mode 0400 unless
  ``mode=``) at ``target`` or ``/run/secrets/<id>``; a missing secret is skipped unless
  ``required``; never part of the layer (the mount point is removed before commit);
* ``ssh`` and anything else: an error naming the line.

A heredoc script (``RUN <<EOF`` starting with ``#!``) is written to ``private/pipes/<name>``
(0755) and mounted read-only at ``/dev/pipes``, where BuildKit puts it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

from dockyard.builder import instructions as ins
from dockyard.builder.cache import BuildCache
from dockyard.builder.steps.run import RunMount
from dockyard.builder.values import context_source
from dockyard.errors import InvalidArgument
from dockyard.linux.pathres import resolve


def prepare_mounts(
    instr: ins.Run,
    *,
    private: Path,
    cache: BuildCache,
    secrets: Mapping[str, bytes],
    context_root: Callable[[], Path],
    source_root: Callable[[str], Path],
    shebang: tuple[str, str] | None = None,
) -> list[RunMount]:
    mounts: list[RunMount] = []
    line = instr.line
    if shebang is not None:
        pipes = private / "pipes"
        pipes.mkdir()
        (pipes / shebang[0]).write_text(shebang[1])
        (pipes / shebang[0]).chmod(0o755)
        mounts.append(RunMount("/dev/pipes", str(pipes), "bind", ("rbind", "ro")))
    for m in instr.mounts:
        target = m.target
        if m.type == "cache":
            d = cache.mount_dir(m.id or target)
            if not any(d.iterdir()):
                os.chmod(d, m.mode if m.mode is not None else 0o755)
                os.chown(d, m.uid or 0, m.gid or 0)
            mounts.append(RunMount(target, str(d), "bind", ("rbind", "ro" if m.readonly else "rw")))
        elif m.type == "tmpfs":
            opts = ("nosuid", "nodev") + ((f"size={m.size}",) if m.size else ())
            mounts.append(RunMount(target, "tmpfs", "tmpfs", opts))
        elif m.type == "secret":
            sid = m.id or os.path.basename(target or "")
            data = secrets.get(sid)
            if data is None:
                if m.required:
                    raise InvalidArgument(f"dockerfile line {line}: secret {sid} not found")
                continue
            f = private / f"secret-{len(mounts)}"
            f.write_bytes(data)
            os.chown(f, m.uid or 0, m.gid or 0)
            os.chmod(f, m.mode if m.mode is not None else 0o400)
            mounts.append(RunMount(target or f"/run/secrets/{sid}", str(f), "bind", ("rbind", "ro")))
        elif m.type == "bind":
            root = source_root(m.from_) if m.from_ else context_root()
            src = resolve(root, context_source(m.source or "."))
            if not os.path.lexists(src):
                raise InvalidArgument(f"dockerfile line {line}: mount source {m.source or '/'} not found")
            if not m.readonly:  # writes are discarded: give the step a private copy
                copy = private / f"bind-{len(mounts)}"
                if os.path.isdir(src):
                    shutil.copytree(src, copy, symlinks=True)
                else:
                    shutil.copy2(src, copy)
                src = copy
            mounts.append(RunMount(target, str(src), "bind", ("rbind", "ro" if m.readonly else "rw")))
        else:
            raise InvalidArgument(f"dockerfile line {line}: RUN --mount=type={m.type} is not supported")
    return mounts
