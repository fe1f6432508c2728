"""OCI hooks: run each hook with the container's state JSON on stdin.

``run(hooks, state, name)`` runs ``hooks`` in order; the first that fails (non-zero exit,
missing executable, timeout) raises ``Internal`` with runc's wording ("error running
createRuntime hook #0: exit status 1, stdout: ..., stderr: ..."). For poststart and poststop
the spec says failures only warn: ``run(..., warn_only=True)`` writes the message to stderr
and continues. ``subprocess`` is imported only when a hook exists.
"""

from __future__ import annotations

import os

from dockyard.errors import Internal
from dockyard.runtime import fastjson


def run(hooks: list[dict] | None, state: dict, name: str, warn_only: bool = False) -> None:
    if not hooks:
        return
    import subprocess

    data = fastjson.dumps(state).encode()
    for i, h in enumerate(hooks):
        args = h.get("args") or [h["path"]]
        env = dict(e.split("=", 1) for e in h.get("env") or [] if "=" in e)
        timeout = h.get("timeout")
        try:
            p = subprocess.run(args, executable=h["path"], input=data, env=env,
                               capture_output=True, timeout=timeout)
            msg = None
            if p.returncode != 0:
                how = f"exit status {p.returncode}" if p.returncode > 0 \
                    else f"signal: {-p.returncode}"
                msg = (f"error running {name} hook #{i}: {how}, stdout: "
                       f"{p.stdout.decode(errors='replace').strip()}, stderr: "
                       f"{p.stderr.decode(errors='replace').strip()}")
        except subprocess.TimeoutExpired:
            msg = f"error running {name} hook #{i}: timeout after {timeout}s"
        except OSError as e:
            msg = f"error running {name} hook #{i}: {h['path']}: {e.strerror}"
        if msg is not None:
            if warn_only:
                os.write(2, f"warning: {msg}\n".encode())
                continue
            raise Internal(msg)
