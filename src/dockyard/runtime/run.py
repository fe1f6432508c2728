"""``run``: create and start in one step, then (unless detached) wait and clean up.

Contract: ``run(root, cid, bundle, ...)`` returns the container's exit status (128+N when
killed by signal N, as a shell reports it), after deleting the container; with
``detach=True`` it returns 0 as soon as the process runs. It makes the calling process a
child subreaper so that it can reap the init (a grandchild), and forwards SIGINT, SIGTERM,
SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH to it while waiting. There is no exec.fifo
barrier: the init execs as soon as it is set up.
"""

from __future__ import annotations

import os

from dockyard.runtime import create as create_mod

_FORWARD = (1, 2, 3, 10, 12, 15, 28)


def run(root: str, cid: str, bundle: str, *, detach: bool = False,
        console_socket: str | None = None, pid_file: str | None = None,
        no_pivot: bool = False, preserve_fds: int = 0, keep: bool = False,
        no_new_keyring: bool = False) -> int:
    from dockyard.linux import syscalls as s

    s.prctl(s.PR_SET_CHILD_SUBREAPER, 1)
    listener = None
    if not detach and not console_socket and _wants_terminal(bundle):
        from dockyard.runtime.tty import ConsoleListener

        listener = ConsoleListener(root)
        console_socket = listener.path
    try:
        rec = create_mod.create_record(root, cid, bundle, console_socket=console_socket,
                                       pid_file=pid_file, no_pivot=no_pivot,
                                       preserve_fds=preserve_fds, barrier=False,
                                       no_new_keyring=no_new_keyring)
        try:
            master = listener.receive() if listener is not None else -1
        except BaseException:
            from dockyard.runtime.delete import delete

            delete(root, cid, force=True)
            raise
    finally:
        if listener is not None:
            listener.close()
    pid = rec["pid"]
    if (rec.get("hooks") or {}).get("poststart"):
        from dockyard.runtime import hooks, state

        hooks.run(rec["hooks"]["poststart"], state.public(root, rec, "running"), "poststart",
                  warn_only=True)
    if detach:
        return 0
    import _signal

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for sig in _FORWARD:
        _signal.signal(sig, forward)
    if master >= 0:
        from dockyard.runtime.tty import proxy

        proxy(master)
    code = 255
    while True:
        try:
            wpid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if wpid == pid:
            code = os.waitstatus_to_exitcode(status)
            code = 128 - code if code < 0 else code
            break
    if not keep:
        from dockyard.runtime.delete import destroy

        destroy(root, rec)  # the init is reaped: no status check, nothing to kill
    return code


def _wants_terminal(bundle: str) -> bool:
    from dockyard.runtime import config

    try:
        return bool(config.read(bundle).get("process", {}).get("terminal"))
    except Exception:  # noqa: BLE001 - create() reports a bad config properly
        return False
