"""``exec``: start another process inside a running container.

Contract: ``exec_process(root, cid, proc, ...)`` returns the new process's host pid once it
has exec'd (or raises, leaving nothing behind). The process is forked by the caller straight
into the container's pid namespace (like ``init.fork_direct``: single-threaded callers) and
joins the cgroup and the other namespaces itself; the caller (or, once it exits, its child
subreaper) reaps it.
Its stdio are the caller's fds 0-2 (or the fds given as ``stdio``), or a pty whose master is
sent over ``console_socket``.
``proc`` is an OCI process object (checked like config.json's); the container's seccomp
profile applies to it. Errors: ``NotFound``; ``Conflict("cannot exec in a stopped
container")``, ``Conflict("cannot exec in a paused container")``; ``ExecutableNotFound`` /
``ExecutableNotRunnable`` with runc's wording; ``InvalidArgument`` for a bad process.
"""

from __future__ import annotations

import os

from dockyard.errors import Conflict, Internal, InvalidArgument
from dockyard.linux import syscalls as s
from dockyard.runtime import config, state, sync
from dockyard.runtime.create import _error_from_child, connect_console
from dockyard.runtime.reap import kill_and_reap

# Join order (runc's nsexec): user first, mount last but one (after it /proc is the container's).
_ORDER = ("user", "ipc", "uts", "net", "pid", "cgroup", "time", "mnt")
_FLAGS = {"user": 0x10000000, "ipc": 0x08000000, "uts": 0x04000000, "net": 0x40000000,
          "pid": 0x20000000, "cgroup": 0x02000000, "time": 0x80, "mnt": 0x00020000}


def exec_process(root: str, cid: str, proc: dict, *, console_socket: str | None = None,
                 pid_file: str | None = None, preserve_fds: int = 0,
                 stdio: tuple[int, int, int] | None = None) -> int:
    rec = state.load(root, cid)
    st = state.status(root, rec)
    if st == "paused":
        raise Conflict("cannot exec in a paused container")
    if st not in ("running", "created"):
        raise Conflict("cannot exec in a stopped container")
    config.check_process(proc, "process")
    if proc.get("terminal") and not console_socket:
        raise InvalidArgument("cannot allocate tty if runc will detach without setting "
                              "console socket")
    seccomp_filter = None
    if rec.get("seccomp"):
        from dockyard.linux import seccomp

        try:
            seccomp_filter = seccomp.compile(rec["seccomp"],
                                             cache_dir=state.seccomp_cache_dir(root))
        except ValueError as e:
            raise InvalidArgument(f"config.json: {e}") from None
    from dockyard.runtime.init import preload

    preload(proc)
    init = rec["pid"]
    fds: list[int] = []
    pid_e = 0
    try:
        # Open every namespace before joining any: after setns(mnt) /proc is not ours.
        ns_fds: list[tuple[int, int]] = []
        for name in _ORDER:
            try:
                if os.stat(f"/proc/{init}/ns/{name}").st_ino == os.stat(f"/proc/self/ns/{name}").st_ino:
                    continue
                fd = os.open(f"/proc/{init}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            fds.append(fd)
            ns_fds.append((fd, _FLAGS[name]))
        console_fd = None
        if proc.get("terminal"):
            console_fd = connect_console(console_socket)
            fds.append(console_fd)
        c2p_r, c2p_w = os.pipe()
        fds += [c2p_r, c2p_w]
        cg = None
        if rec.get("cgroup"):
            from dockyard.linux import cgroups

            cg = cgroups.Cgroup.from_dict(rec["cgroup"])
        # Fork straight into the container's pid namespace (point our children at it, fork,
        # point them back): no intermediate process; the child joins the rest itself.
        pid_fd = next((fd for fd, flag in ns_fds if flag == _FLAGS["pid"]), None)
        own = -1
        if pid_fd is not None:
            own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
            fds.append(own)
            s.setns(pid_fd, _FLAGS["pid"])
        try:
            pid_e = os.fork()
            if pid_e == 0:
                os.close(c2p_r)
                _exec_child(c2p_w, cg, [n for n in ns_fds if n[1] != _FLAGS["pid"]], proc,
                            console_fd, seccomp_filter, preserve_fds, stdio)
        finally:
            if own >= 0:
                s.setns(own, _FLAGS["pid"])
        os.close(c2p_w)
        fds.remove(c2p_w)
        while True:
            msg = sync.recv(c2p_r)
            if msg is None:
                break  # the process exec'd (close-on-exec)
            if msg[0] == "E":
                raise _error_from_child(msg[1])
        if not pid_e:
            raise Internal("unable to start container process: exec process exited unexpectedly")
        if pid_file:
            state.write_pid_file(pid_file, pid_e)
        return pid_e
    except BaseException:
        if pid_e:
            kill_and_reap(pid_e)
        raise
    finally:
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass


def _exec_child(c2p: int, cg: object, ns_fds: list[tuple[int, int]], proc: dict,
                console_fd: int | None, seccomp_filter: object, preserve_fds: int,
                stdio: tuple[int, int, int] | None) -> None:
    """The exec'd process before exec: cgroup (single-threaded, so the cheap ``tasks`` move),
    namespaces (user first, mount last), console, then the process settings. Never returns."""
    from dockyard.runtime import process
    from dockyard.runtime.init import _fail, after_fork

    try:
        after_fork(stdio)
        if cg is not None:
            from dockyard.linux import cgroups

            cgroups.join_self(cg)  # type: ignore[arg-type]
        for fd, flag in ns_fds:
            s.setns(fd, flag)
        if proc.get("terminal"):
            from dockyard.linux import console

            os.setsid()
            console.setup(console_fd)
        path = process.lookpath(proc["args"][0], process.env_dict(proc.get("env")))
        process.finalize_and_exec(proc, path, seccomp_filter, preserve_fds)
    except BaseException as e:  # noqa: BLE001
        _fail(c2p, e)
