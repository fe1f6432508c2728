"""The one place that runs the OCI runtime (a runc-compatible CLI: ``dockyard-runtime`` or ``runc``).

It only builds argument vectors and spawns with ``os.posix_spawn`` (fork+exec without Python in
the child); reaping belongs to the monitor's reaper, which hands back exit codes. When the
runtime offers an in-process library API, swap :func:`spawn` for a call into it here.

Errors: the runtime writes JSON log lines to ``--log`` (``{"level": "error", "msg": ...}``);
:func:`last_error` extracts the message a user should see.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

DEVNULL = "/dev/null"


def global_args(runtime: Sequence[str], log_path: str | None) -> list[str]:
    """``runtime`` is the daemon-chosen prefix, e.g. ``["/usr/sbin/runc", "--root", R]``."""
    args = list(runtime)
    if log_path:
        args += ["--log", log_path, "--log-format", "json"]
    return args


def create_args(cid: str, bundle: str, pid_file: str, console_socket: str | None) -> list[str]:
    """The ``create`` subcommand (global flags come from :func:`global_args`)."""
    args = ["create", "--bundle", bundle, "--pid-file", pid_file]
    if console_socket:
        args += ["--console-socket", console_socket]
    return args + [cid]


def exec_args(cid: str, process_json: str, pid_file: str, console_socket: str | None) -> list[str]:
    """The ``exec`` subcommand, detached: the process is reparented to the (subreaper) caller."""
    args = ["exec", "--process", process_json, "--detach", "--pid-file", pid_file]
    if console_socket:
        args += ["--console-socket", console_socket]
    return args + [cid]


def spawn(argv: Sequence[str], stdin: int, stdout: int, stderr: int) -> int:
    """Start ``argv`` with the given fds as 0/1/2; other fds are close-on-exec. Returns the pid."""
    actions = [
        (os.POSIX_SPAWN_DUP2, stdin, 0),
        (os.POSIX_SPAWN_DUP2, stdout, 1),
        (os.POSIX_SPAWN_DUP2, stderr, 2),
    ]
    env = dict(os.environ)
    return os.posix_spawn(argv[0], list(argv), env, file_actions=actions)


def last_error(log_path: str, since: int = 0) -> str:
    """The last error message the runtime logged after byte offset ``since``."""
    try:
        with open(log_path, "rb") as f:
            f.seek(since)
            data = f.read()
    except OSError:
        return ""
    msg = ""
    for raw in data.splitlines():
        try:
            entry = json.loads(raw)
        except ValueError:
            text = raw.decode("utf-8", "replace").strip()
            msg = text or msg
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "fatal"):
            msg = str(entry.get("msg", "")) or msg
    return msg


def log_size(log_path: str) -> int:
    try:
        return os.stat(log_path).st_size
    except OSError:
        return 0


# In-process calls: when the runtime is our own dockyard-runtime, the monitor (single-threaded,
# already warm) calls its library instead of starting an interpreter per create/start/delete.
# Set DOCKYARD_MONITOR_INPROC=0 to always use the CLI.

class InProcessFailure(Exception):
    """The runtime library refused; ``str()`` is the message its CLI would print."""


def in_process(runtime: Sequence[str]) -> str | None:
    """The ``--root`` to pass to the library if ``runtime`` is ours, else None."""
    if os.environ.get("DOCKYARD_MONITOR_INPROC", "1") == "0" or not runtime:
        return None
    if os.path.basename(runtime[0]) != "dockyard-runtime":
        return None
    args = list(runtime[1:])
    root = "/run/dockyard-runtime"
    for i, a in enumerate(args):
        if a == "--root" and i + 1 < len(args):
            root = args[i + 1]
        elif a.startswith("--root="):
            root = a.split("=", 1)[1]
    return root


def _message(cmd: str, e: BaseException) -> str:
    from dockyard.errors import DockyardError
    from dockyard.runtime.init import describe
    msg = str(e) if isinstance(e, DockyardError) else describe(e) if isinstance(e, OSError) \
        else f"{type(e).__name__}: {e}"
    if cmd in ("create", "run"):
        return f"dockyard-runtime {cmd} failed: {msg}"
    if cmd == "exec":
        return f"exec failed: {msg}"
    return msg


def lib_create(root: str, cid: str, bundle: str, pid_file: str, console_socket: str | None,
               stdio: tuple[int, int, int]) -> int:
    from dockyard.runtime.create import create
    try:
        return create(root, cid, bundle, console_socket=console_socket, pid_file=pid_file, stdio=stdio)
    except Exception as e:  # noqa: BLE001 - every failure is reported with the CLI's wording
        raise InProcessFailure(_message("create", e)) from e


def lib_exec(root: str, cid: str, process_json: str, pid_file: str, console_socket: str | None,
             stdio: tuple[int, int, int]) -> int:
    import json

    from dockyard.runtime.exec import exec_process
    try:
        with open(process_json) as f:
            proc = json.load(f)
        return exec_process(root, cid, proc, console_socket=console_socket, pid_file=pid_file, stdio=stdio)
    except Exception as e:  # noqa: BLE001
        raise InProcessFailure(_message("exec", e)) from e


def lib_call(root: str, args: Sequence[str]) -> None:
    """``start ID`` / ``delete [--force] ID`` / ``kill ID SIG``; anything else: ValueError."""
    try:
        if args[0] == "start":
            from dockyard.runtime.start import start
            start(root, args[-1])
        elif args[0] == "delete":
            from dockyard.runtime.delete import delete
            delete(root, args[-1], force="--force" in args or "-f" in args)
        else:
            raise ValueError(args[0])
    except ValueError:
        raise
    except Exception as e:  # noqa: BLE001
        raise InProcessFailure(_message(args[0], e)) from e
