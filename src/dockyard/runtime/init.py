"""The container side of ``create``: code that runs in forked children, never returns.

Process tree during create (the runtime R stays in its own namespaces). Without a user
namespace (the common case, and the fast one)::

    R ──unshare(CLONE_NEWPID), fork, setns(own pid ns)──▶ C (init, pid 1 of the new ns)

C joins its cgroup itself (``cgroups.join_self``: cheap for a single-threaded process),
then setns() to namespaces given by path and unshare()s the other new ones. With a user
namespace, the pid namespace must be created after it, by a child::

    R ──fork──▶ I (intermediate)  joins the cgroup, setns() to namespaces given by path,
                 │                 unshare() the new ones (one call), waits for R to write
                 │                 uid/gid maps, then
                 └──fork──▶ C (init, pid 1 of the new pid namespace)
    I reports C's host pid to R (``P``) and exits; C is re-parented to R's nearest child
    subreaper (the engine's monitor, or R itself for ``run``).

C then: setsid; uid/gid 0 in a new user namespace; loopback up in a new network namespace;
rootfs (linux.rootfs: private propagation, mounts, devices, createRuntime hooks in R and
createContainer hooks here, pivot_root); console (pty master sent over the console socket);
read-only root, masked/read-only paths; hostname, domainname, sysctls; resolves args[0];
reports ``R`` (ready); blocks opening exec.fifo for writing until ``start`` reads it (create)
or goes straight on (run); startContainer hooks; finalize_and_exec. Any failure before
``R`` is sent to R as ``E`` with the message, then C exits 1. Every module C needs is
imported by ``preload`` before fork: after pivot_root the host's Python library is gone.
"""

from __future__ import annotations

import os

from dockyard.linux import procfs
from dockyard.linux import rootfs as rfs
from dockyard.linux import syscalls as s
from dockyard.runtime import process, sync

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

NS_FLAGS = {
    "pid": s.CLONE_NEWPID, "network": s.CLONE_NEWNET, "mount": s.CLONE_NEWNS,
    "ipc": s.CLONE_NEWIPC, "uts": s.CLONE_NEWUTS, "user": s.CLONE_NEWUSER,
    "cgroup": s.CLONE_NEWCGROUP, "time": s.CLONE_NEWTIME,
}


class InitContext:
    """Everything the children need, prepared by the runtime before fork."""

    __slots__ = ("cfg", "bundle", "rootfs", "cgroup", "c2p", "p2c", "fifo_fd", "console_fd",
                 "seccomp", "no_pivot", "barrier", "preserve_fds", "state_for_hooks", "exe",
                 "no_new_keyring", "stdio")

    def __init__(self, **kw: Any) -> None:
        for k in self.__slots__:
            setattr(self, k, kw.get(k))


def preload(proc: dict, cfg: dict | None = None) -> None:
    """Import, before fork, every module the children may need: after pivot_root the host's
    Python library is out of reach."""
    if proc.get("capabilities") is not None:
        from dockyard.linux import caps  # noqa: F401
    if proc.get("terminal"):
        from dockyard.linux import console  # noqa: F401
    if cfg is not None:
        from dockyard.linux import cgroups  # noqa: F401

        if cfg.get("hooks"):
            import subprocess  # noqa: F401

            from dockyard.runtime import hooks  # noqa: F401


def after_fork(stdio: tuple[int, int, int] | None) -> None:
    """First thing in every forked child. Undo what the calling Python process set up for
    itself: signal handlers, an asyncio wakeup fd, the signal mask, and above all SIGPIPE and
    SIGXFSZ, which Python ignores and an exec'd program would inherit ignored. Then put the
    caller's chosen ``stdio`` fds on 0, 1 and 2 (default: the caller's own 0, 1, 2)."""
    import _signal

    _signal.set_wakeup_fd(-1)
    for sig in (1, 2, 3, 10, 12, 13, 14, 15, 17, 25, 28):
        try:
            _signal.signal(sig, _signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])
    if stdio is not None:
        for target, fd in enumerate(stdio):
            if fd != target:
                os.dup2(fd, target)
            else:
                os.set_inheritable(fd, True)


def describe(err: BaseException) -> str:
    """The message for an error: our OSErrors carry the whole text in ``strerror``."""
    if isinstance(err, OSError) and err.strerror:
        return err.strerror + (f": {err.filename}" if err.filename else "")
    return str(err) or type(err).__name__


def _fail(fd: int, err: BaseException) -> None:
    msg = describe(err)
    try:
        sync.send(fd, "E", f"{type(err).__name__}:{msg}")
    except OSError:
        pass
    os._exit(1)


def intermediate(ctx: InitContext) -> None:
    """Run in I. Never returns."""
    try:
        after_fork(ctx.stdio)
        nss = ctx.cfg["linux"].get("namespaces") or []
        if ctx.cgroup is not None:
            # Before unsharing: a new cgroup namespace is rooted where we are; and the init
            # forked below inherits the cgroup.
            from dockyard.linux import cgroups

            cgroups.join_self(ctx.cgroup)
        # Join namespaces given by path; the user namespace first (it owns the others).
        for ns in sorted((n for n in nss if n.get("path")), key=lambda n: n["type"] != "user"):
            fd = os.open(ns["path"], os.O_RDONLY | os.O_CLOEXEC)
            try:
                s.setns(fd, NS_FLAGS[ns["type"]])
            finally:
                os.close(fd)
        flags = 0
        for ns in nss:
            if not ns.get("path"):
                flags |= NS_FLAGS[ns["type"]]
        if flags:
            s.unshare(flags)
        if flags & s.CLONE_NEWUSER:
            sync.send(ctx.c2p, "U")
            msg = sync.recv(ctx.p2c)
            if msg is None or msg[0] != "u":
                os._exit(1)
        pid = os.fork()
        if pid == 0:
            container_init(ctx, bool(flags & s.CLONE_NEWUSER), bool(flags & s.CLONE_NEWNET))
        sync.send(ctx.c2p, "P", str(pid))
        os._exit(0)
    except BaseException as e:  # noqa: BLE001 - everything is reported to the runtime
        _fail(ctx.c2p, e)


def fork_direct(ctx: InitContext) -> int:
    """Fork the init straight from the runtime (no intermediate process); return its pid.

    Only for configs without a user namespace (a new pid namespace must be owned by the
    user namespace, which only a child can create first). The runtime enters the new (or
    given) pid namespace for its *children* only, forks, and switches back at once, so the
    init is its direct child, pid 1 of the new namespace, and its pid is known immediately.
    """
    nss = ctx.cfg["linux"].get("namespaces") or []
    pidns = next((n for n in nss if n["type"] == "pid"), None)
    own = -1
    if pidns is not None:
        own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if pidns.get("path"):
                fd = os.open(pidns["path"], os.O_RDONLY | os.O_CLOEXEC)
                try:
                    s.setns(fd, s.CLONE_NEWPID)
                finally:
                    os.close(fd)
            else:
                s.unshare(s.CLONE_NEWPID)
        except BaseException:
            os.close(own)
            raise
    try:
        pid = os.fork()
        if pid == 0:
            _direct_child(ctx, nss)
    finally:
        if own >= 0:
            s.setns(own, s.CLONE_NEWPID)
            os.close(own)
    return pid


def _direct_child(ctx: InitContext, nss: list[dict]) -> None:
    """The init when forked by ``fork_direct``: join/create the other namespaces, then init."""
    try:
        after_fork(ctx.stdio)
        if ctx.cgroup is not None:
            from dockyard.linux import cgroups

            cgroups.join_self(ctx.cgroup)  # first: a new cgroup namespace is rooted here
        flags = 0
        for ns in nss:
            if ns["type"] == "pid":
                continue
            if ns.get("path"):
                fd = os.open(ns["path"], os.O_RDONLY | os.O_CLOEXEC)
                try:
                    s.setns(fd, NS_FLAGS[ns["type"]])
                finally:
                    os.close(fd)
            else:
                flags |= NS_FLAGS[ns["type"]]
        if flags:
            s.unshare(flags)
    except BaseException as e:  # noqa: BLE001
        _fail(ctx.c2p, e)
    container_init(ctx, False, bool(flags & s.CLONE_NEWNET))


def _ns_types(cfg: dict) -> set[str]:
    return {ns["type"] for ns in cfg["linux"].get("namespaces") or []}


def container_init(ctx: InitContext, new_user: bool, new_net: bool) -> None:
    """Run in C. Never returns."""
    try:
        _setup(ctx, new_user, new_net)
    except BaseException as e:  # noqa: BLE001
        _fail(ctx.c2p, e)
    # Past the barrier: failures go to the container's stderr (the runtime may be gone).
    try:
        _after_barrier(ctx)
    except BaseException as e:  # noqa: BLE001
        try:
            os.write(2, f"dockyard-runtime init: {describe(e)}\n".encode())
        except OSError:
            pass
        os._exit(127 if isinstance(e, OSError) and e.errno == 2 else 126)


def _setup(ctx: InitContext, new_user: bool, new_net: bool) -> None:
    cfg = ctx.cfg
    linux = cfg["linux"]
    proc = cfg["process"]
    types = _ns_types(cfg)
    os.setsid()
    if not ctx.no_new_keyring:  # don't share the runtime's session keyring (runc does this)
        s.join_session_keyring(f"_ses.{ctx.state_for_hooks['id']}")
    if new_user:
        os.setgroups([])
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    if new_net:
        s.interface_up("lo")  # a new network namespace starts with lo down
    rootfs = ctx.rootfs
    mounts = cfg.get("mounts") or []
    hooks = cfg.get("hooks") or {}
    if "mount" in types:
        rfs.make_private(linux.get("rootfsPropagation"))
        rfs.bind_self(rootfs)
        cg = ctx.cgroup
        for i, m in enumerate(mounts):
            rfs.mount_entry(rootfs, ctx.bundle, m, i, cg.dirs if cg else {}, cg.version if cg else 1)
        if not rfs.dev_is_bind(mounts):
            rfs.create_devices(rootfs, linux.get("devices") or [], new_user)
            rfs.dev_symlinks(rootfs)
    if any(hooks.get(k) for k in ("prestart", "createRuntime", "createContainer",
                                   "startContainer")):
        # The runtime runs prestart/createRuntime hooks and tells us our host pid, which
        # the state given to createContainer/startContainer hooks carries.
        sync.send(ctx.c2p, "H")
        msg = sync.recv(ctx.p2c)
        if msg is None or msg[0] != "h":
            os._exit(1)
        ctx.state_for_hooks = dict(ctx.state_for_hooks, pid=int(msg[1] or 0))
    if hooks.get("createContainer"):
        from dockyard.runtime import hooks as hookmod

        hookmod.run(hooks["createContainer"], ctx.state_for_hooks, "createContainer")
    if "mount" in types:
        if ctx.no_pivot:
            rfs.move_root(rootfs)
        else:
            rfs.pivot_root(rootfs)
    else:
        os.chroot(rootfs)
        os.chdir("/")
    if proc.get("terminal"):
        from dockyard.linux import console

        console.setup(ctx.console_fd)
    cwd = proc.get("cwd") or "/"
    if not os.path.isdir(cwd):  # runc creates a missing cwd (before a read-only remount)
        os.makedirs(cwd, 0o755, exist_ok=True)
    if cfg.get("root", {}).get("readonly"):
        rfs.remount_readonly("/")
    if cfg.get("hostname"):
        s.sethostname(cfg["hostname"])
    if cfg.get("domainname"):
        s.setdomainname(cfg["domainname"])
    # sysctls before the read-only /proc/sys remount below (runc's order)
    for key, val in (linux.get("sysctl") or {}).items():
        try:
            procfs.write_sysctl(key, val)
        except OSError as e:
            raise OSError(e.errno, f"linux.sysctl.{key}: {e.strerror}") from None
    if linux.get("maskedPaths"):
        rfs.mask_paths(linux["maskedPaths"])
    if linux.get("readonlyPaths"):
        rfs.readonly_paths(linux["readonlyPaths"])
    env = process.env_dict(proc.get("env"))
    ctx.exe = process.lookpath(proc["args"][0], env)
    if ctx.barrier:  # before "R": once create returns, the waiting init holds nothing more
        _close_inherited(3 + (ctx.preserve_fds or 0), {ctx.c2p, ctx.p2c, ctx.fifo_fd})
    sync.send(ctx.c2p, "R")
    if ctx.barrier:
        os.close(ctx.c2p)
        os.close(ctx.p2c)
        fd = os.open(f"/proc/self/fd/{ctx.fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
        os.write(fd, b"0")
        os.close(fd)
        os.close(ctx.fifo_fd)


def _close_inherited(low: int, keep: set[int]) -> None:
    """Close every fd from ``low`` up, except those in ``keep``. A forked init holds all of
    its creator's fds, CLOEXEC or not, until it execs, and the wait at the barrier can last
    days. In the engine the creator is the monitor: its listening socket held by a created
    container kept a dead monitor's socket accepting (a restarted daemon hung on it), and
    other containers' log files stayed open. runc's init is a fresh exec and holds nothing."""
    top = os.sysconf("SC_OPEN_MAX")
    for fd in sorted(k for k in keep if low <= k < top):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, top)


def _after_barrier(ctx: InitContext) -> None:
    hooks = ctx.cfg.get("hooks") or {}
    if hooks.get("startContainer"):
        from dockyard.runtime import hooks as hookmod

        hookmod.run(hooks["startContainer"], dict(ctx.state_for_hooks, status="running"),
                    "startContainer")
    process.finalize_and_exec(ctx.cfg["process"], ctx.exe, ctx.seccomp, ctx.preserve_fds or 0)
