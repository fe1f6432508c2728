"""``create``: set a container up and leave its process blocked before exec.

Contract: ``create(root, cid, bundle, ...)`` returns the init's host pid once the container
is ``created`` (or, with ``barrier=False``, as ``run`` uses it, once it is about to exec);
``create_record`` returns the whole state record instead. Without a user namespace the init
is a direct child of the caller (see ``init.fork_direct``); with one it is a grandchild (the
intermediate process exits after forking it). Either way, once the caller exits or if it
is not the parent, the init belongs to the caller's nearest child subreaper: the caller is
responsible for reaping (make it one with ``prctl(PR_SET_CHILD_SUBREAPER)``, as
containerd-shim is). The init inherits the caller's fds 0, 1 and 2 as the container's stdio,
like runc, or the three fds given as ``stdio`` (an in-process caller's pipes); with
``process.terminal`` the pty master is sent over ``console_socket`` instead.

In-process use (the engine's monitor): single-threaded callers only. ``fork_direct`` briefly
points the caller's *children* at the new pid namespace (unshare(CLONE_NEWPID), fork, setns
back); a fork by another thread in that window would land in the container's namespace.

Failure: raises (``InvalidArgument``, ``AlreadyExists``, ``ExecutableNotFound``,
``ExecutableNotRunnable``, ``Unavailable``, ``Internal``, ``OSError``) after killing the init,
removing the cgroup and the state directory: nothing is left behind.
"""

from __future__ import annotations

import os

from dockyard.errors import Internal, InvalidArgument
from dockyard.runtime import config, state, sync
from dockyard.runtime.init import InitContext, fork_direct, intermediate, preload
from dockyard.runtime.reap import kill_and_reap

# Class names the children report failures with (type name before the colon in ``E``).
_ERR_PREFIX = "unable to start container process: "


def _error_from_child(payload: str) -> Exception:
    from dockyard import errors
    from dockyard.runtime import errors as rterrors

    kind, _, msg = payload.partition(":")
    cls = getattr(rterrors, kind, None) or getattr(errors, kind, None)
    if isinstance(cls, type) and issubclass(cls, errors.DockyardError):
        if cls is errors.InvalidArgument:
            return cls(msg)
        return cls(_ERR_PREFIX + msg)
    if kind == "ValueError":
        return InvalidArgument(msg)
    return Internal(_ERR_PREFIX + msg)


def write_idmaps(pid: int, linux: dict) -> None:
    for key, name in (("uidMappings", "uid_map"), ("gidMappings", "gid_map")):
        lines = "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n"
                        for m in linux.get(key) or [])
        try:
            fd = os.open(f"/proc/{pid}/{name}", os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, lines.encode())
            finally:
                os.close(fd)
        except OSError as e:
            raise InvalidArgument(f"config.json: linux.{key}: writing /proc/{pid}/{name}: "
                                  f"{e.strerror}") from None


def connect_console(console_socket: str | None) -> int:
    """Connect to ``--console-socket`` (runc's contract: the pty master is sent there over
    SCM_RIGHTS); the connected socket's fd. A bad path is the caller's error."""
    import _socket  # not `socket`: its import is too slow for the runtime's start-up

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(console_socket)
    except OSError as e:
        sock.close()
        raise InvalidArgument(f"--console-socket {console_socket}: {e.strerror}") from None
    return sock.detach()


def create(root: str, cid: str, bundle: str, *, console_socket: str | None = None,
           pid_file: str | None = None, no_pivot: bool = False, preserve_fds: int = 0,
           barrier: bool = True, no_new_keyring: bool = False,
           stdio: tuple[int, int, int] | None = None) -> int:
    """Create container ``cid`` from ``bundle``; return the init's pid (see module doc)."""
    return create_record(root, cid, bundle, console_socket=console_socket, pid_file=pid_file,
                         no_pivot=no_pivot, preserve_fds=preserve_fds, barrier=barrier,
                         no_new_keyring=no_new_keyring, stdio=stdio)["pid"]


def create_record(root: str, cid: str, bundle: str, *, console_socket: str | None = None,
                  pid_file: str | None = None, no_pivot: bool = False, preserve_fds: int = 0,
                  barrier: bool = True, no_new_keyring: bool = False,
                  stdio: tuple[int, int, int] | None = None) -> dict:
    """Like ``create`` but return the container's state record (see ``state``)."""
    state.check_id(cid)
    bundle = os.path.abspath(bundle)
    cfg = config.load(bundle)
    linux = cfg["linux"]
    proc = cfg["process"]
    seccomp_filter = None
    if linux.get("seccomp"):
        from dockyard.linux import seccomp

        try:
            seccomp_filter = seccomp.compile(linux["seccomp"],
                                             cache_dir=state.seccomp_cache_dir(root))
        except ValueError as e:
            raise InvalidArgument(f"config.json: {e}") from None
    if proc.get("terminal") and not console_socket:
        raise InvalidArgument("cannot allocate tty if runc will detach without setting "
                              "console socket")
    preload(proc, cfg)
    d = state.reserve(root, cid)
    cg = None
    pid_i = init_pid = 0
    fds: list[int] = []
    try:
        fifo_fd = None
        if barrier:
            os.mkfifo(f"{d}/exec.fifo", 0o622)
            fifo_fd = os.open(f"{d}/exec.fifo", os.O_PATH | os.O_CLOEXEC)
            fds.append(fifo_fd)
        from dockyard.linux import cgroups

        try:
            cg = cgroups.resolve(linux.get("cgroupsPath"), cid)
            cgroups.create(cg)
        except ValueError as e:
            cg = None
            raise InvalidArgument(f"config.json: {e}") from None
        try:
            cgroups.apply(cg, linux.get("resources"))
        except ValueError as e:
            raise InvalidArgument(f"config.json: {e}") from None
        console_fd = None
        if proc.get("terminal"):
            console_fd = connect_console(console_socket)
            fds.append(console_fd)
        c2p_r, c2p_w = os.pipe()
        p2c_r, p2c_w = os.pipe()
        fds += [c2p_r, c2p_w, p2c_r, p2c_w]
        created = state.now_rfc3339()
        hook_state = {"ociVersion": cfg["ociVersion"], "id": cid, "status": "creating",
                      "pid": 0, "bundle": bundle}
        if cfg.get("annotations"):
            hook_state["annotations"] = cfg["annotations"]
        ctx = InitContext(cfg=cfg, bundle=bundle, rootfs=cfg["_rootfs"], cgroup=cg, c2p=c2p_w,
                          p2c=p2c_r, fifo_fd=fifo_fd, console_fd=console_fd,
                          seccomp=seccomp_filter, no_pivot=no_pivot, barrier=barrier,
                          preserve_fds=preserve_fds, state_for_hooks=hook_state,
                          no_new_keyring=no_new_keyring, stdio=stdio)
        nss = linux.get("namespaces") or []
        if any(n["type"] == "user" for n in nss):
            pid_i = os.fork()
            if pid_i == 0:
                os.close(c2p_r)
                os.close(p2c_w)
                intermediate(ctx)
        else:
            init_pid = fork_direct(ctx)
        for fd in (c2p_w, p2c_r):
            os.close(fd)
            fds.remove(fd)
        hooks = cfg.get("hooks") or {}
        while True:
            msg = sync.recv(c2p_r)
            if msg is None:
                raise Internal(_ERR_PREFIX + "container init exited unexpectedly")
            tag, payload = msg
            if tag == "U":
                write_idmaps(pid_i, linux)
                sync.send(p2c_w, "u")
            elif tag == "P":
                init_pid = int(payload)
                try:
                    os.waitpid(pid_i, 0)
                except ChildProcessError:
                    pass  # an in-process caller's own SIGCHLD reaper got there first
                pid_i = 0
            elif tag == "H":
                from dockyard.runtime import hooks as hookmod

                hs = dict(hook_state, pid=init_pid)
                hookmod.run(hooks.get("prestart"), hs, "prestart")
                hookmod.run(hooks.get("createRuntime"), hs, "createRuntime")
                sync.send(p2c_w, "h", str(init_pid))
            elif tag == "R":
                break
            elif tag == "E":
                raise _error_from_child(payload)
        st = state.proc_starttime(init_pid)
        rec = {
            "ociVersion": cfg["ociVersion"], "id": cid, "pid": init_pid, "bundle": bundle,
            "rootfs": cfg["_rootfs"], "created": created, "owner": "",
            "starttime": st[0] if st else 0, "cgroup": cg.to_dict(),
            "process": proc, "hooks": {k: hooks[k] for k in ("poststart", "poststop")
                                       if hooks.get(k)},
            "namespaces": [ns["type"] for ns in linux.get("namespaces") or []],
        }
        if cfg.get("annotations"):
            rec["annotations"] = cfg["annotations"]
        if linux.get("seccomp"):
            rec["seccomp"] = linux["seccomp"]
        state.save(root, cid, rec)
        if pid_file:
            state.write_pid_file(pid_file, init_pid)
        return rec
    except BaseException:
        if pid_i:
            try:
                os.kill(pid_i, 9)
                os.waitpid(pid_i, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        if init_pid:
            kill_and_reap(init_pid)
        if cg is not None:
            from dockyard.linux import cgroups

            for p in cgroups.procs(cg):
                kill_and_reap(p)
            try:
                cgroups.destroy(cg)
            except OSError:
                pass
        state.remove_dir(d)
        raise
    finally:
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass
