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
