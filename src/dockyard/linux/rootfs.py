"""Building a container's root filesystem inside its new mount namespace (runc's order).

Called only from the container's init process, after unshare(CLONE_NEWNS)::

    make_private("/")              # nothing we mount may propagate back to the host
    bind_self(rootfs)              # pivot_root needs the new root to be a mount point
    mount_entry(...) for each OCI mount (paths resolved *inside* rootfs, symlinks too)
    create_devices / dev_symlinks  # only when /dev is not a bind of the host's
    pivot_root(rootfs)             # or move_root() for --no-pivot (ramdisk roots)
    remount_readonly("/")          # root.readonly
    mask_paths / readonly_paths

Every function raises ``OSError`` naming the syscall and path, or ``ValueError`` naming the
config field.
"""

from __future__ import annotations

import os
import stat

from dockyard.errors import InvalidArgument
from dockyard.linux import mountopts, pathres
from dockyard.linux import syscalls as s

# (path, type, major, minor, mode): the devices every container gets (runc's DefaultDevices).
DEFAULT_DEVICES = (
    ("/dev/null", "c", 1, 3, 0o666),
    ("/dev/zero", "c", 1, 5, 0o666),
    ("/dev/full", "c", 1, 7, 0o666),
    ("/dev/random", "c", 1, 8, 0o666),
    ("/dev/urandom", "c", 1, 9, 0o666),
    ("/dev/tty", "c", 5, 0, 0o666),
)
_ST_TO_MS = s.MS_NOSUID | s.MS_NODEV | s.MS_NOEXEC | s.MS_NOATIME | s.MS_NODIRATIME | s.MS_RELATIME


def secure_join(root: str, unsafe: str) -> str:
    """``root`` + ``unsafe`` with every symlink resolved as if ``root`` were ``/``.

    Prevents a rootfs symlink (``/proc -> /``) from redirecting a mount to the host. A loop is
    an OSError (ELOOP) here, as the init reports kernel errors.
    """
    try:
        rel = pathres.resolve_rel(unsafe, pathres.host_readlink(root))
    except InvalidArgument as e:
        raise OSError(40, str(e)) from None
    return root.rstrip("/") + "/" + rel


def make_private(propagation: str | None = None) -> None:
    """Make every mount of the new namespace private (or ``rootfsPropagation``)."""
    flag = mountopts.PROPAGATION.get(propagation or "rprivate")
    if flag is None:
        raise ValueError(f"linux.rootfsPropagation: unknown propagation {propagation!r}")
    s.mount(None, "/", None, flag | s.MS_REC)


def bind_self(rootfs: str) -> None:
    s.mount(rootfs, rootfs, None, s.MS_BIND | s.MS_REC)


def _mkfile(path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not os.path.exists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o755))


def _remount_flags(path: str) -> int:
    """The flags a bind remount must keep (the kernel refuses to clear locked ones)."""
    return os.statvfs(path).f_flag & _ST_TO_MS


def mount_entry(rootfs: str, bundle: str, m: dict, index: int, cgroup_dirs: dict[str, str],
                cgroup_version: int) -> None:
    """Mount OCI ``mounts[index]`` inside ``rootfs``."""
    field = f"mounts[{index}]"
    dest = m.get("destination")
    if not isinstance(dest, str) or not dest:
        raise ValueError(f"{field}.destination: required")
    opts = mountopts.parse(list(m.get("options") or ()))
    typ = m.get("type") or ""
    src = m.get("source") or ""
    target = secure_join(rootfs, dest)
    is_bind = typ == "bind" or bool(opts.flags & s.MS_BIND)
    if is_bind:
        if not src:
            raise ValueError(f"{field}.source: required for a bind mount")
        if not src.startswith("/"):
            src = os.path.join(bundle, src)
        if not os.path.exists(src):
            raise OSError(2, f"{field}: bind source {src!r}: no such file or directory")
        if os.path.isdir(src):
            os.makedirs(target, exist_ok=True)
        else:
            _mkfile(target)
        s.mount(src, target, None, s.MS_BIND | (s.MS_REC if opts.recursive_bind else 0))
        extra = opts.flags & ~(s.MS_BIND | s.MS_REC | s.MS_REMOUNT)
        if extra:
            s.mount(None, target, None,
                    s.MS_BIND | s.MS_REMOUNT | extra | _remount_flags(target))
    elif typ == "cgroup":
        os.makedirs(target, exist_ok=True)
        _mount_cgroup(target, opts.flags, cgroup_dirs, cgroup_version)
    else:
        if not typ:
            raise ValueError(f"{field}.type: required for a non-bind mount")
        os.makedirs(target, exist_ok=True)
        try:
            s.mount(src or typ, target, typ, opts.flags & ~s.MS_REMOUNT, opts.data or None)
        except OSError as e:
            # sysfs cannot be mounted without owning a network namespace: bind the host's.
            if typ != "sysfs" or e.errno != 1:
                raise
            s.mount("/sys", target, None, s.MS_BIND | s.MS_REC)
            s.mount(None, target, None, s.MS_BIND | s.MS_REMOUNT | s.MS_RDONLY | s.MS_REC)
    for prop in opts.propagation:
        s.mount(None, target, None, prop)


def _mount_cgroup(target: str, flags: int, dirs: dict[str, str], version: int) -> None:
    """Expose the container's own cgroup directories (bind mounts, like runc without cgroupns)."""
    ro = flags & s.MS_RDONLY
    if version == 2:
        d = dirs.get("")
        if d:
            s.mount(d, target, None, s.MS_BIND)
            if ro:
                s.mount(None, target, None, s.MS_BIND | s.MS_REMOUNT | s.MS_RDONLY
                        | _remount_flags(target))
        return
    s.mount("tmpfs", target, "tmpfs", s.MS_NOSUID | s.MS_NODEV | s.MS_NOEXEC, "mode=755")
    for key, d in dirs.items():
        name = key.split("=", 1)[1] if key.startswith("name=") else key
        sub = target + "/" + name
        os.makedirs(sub, exist_ok=True)
        if os.path.isdir(d):
            s.mount(d, sub, None, s.MS_BIND)
            if ro:
                s.mount(None, sub, None, s.MS_BIND | s.MS_REMOUNT | s.MS_RDONLY | _remount_flags(sub))
        if "," in name:  # cpu,cpuacct → also cpu and cpuacct, as on the host
            for alias in name.split(","):
                if not os.path.lexists(target + "/" + alias):
                    os.symlink(name, target + "/" + alias)
    if ro:
        s.mount(None, target, None, s.MS_REMOUNT | s.MS_RDONLY | s.MS_NOSUID | s.MS_NODEV
                | s.MS_NOEXEC)


def dev_is_bind(mounts: list[dict]) -> bool:
    for m in mounts:
        if m.get("destination", "").rstrip("/") == "/dev":
            return m.get("type") == "bind" or "bind" in (m.get("options") or ()) \
                or "rbind" in (m.get("options") or ())
    return False


def create_devices(rootfs: str, devices: list[dict], userns: bool) -> None:
    """Create the default devices plus ``linux.devices`` (bind mounts from the host in a userns)."""
    wanted: dict[str, tuple[str, int, int, int, int, int]] = {}
    for path, typ, major, minor, mode in DEFAULT_DEVICES:
        wanted[path] = (typ, major, minor, mode, 0, 0)
    for i, d in enumerate(devices):
        field = f"linux.devices[{i}]"
        path = d.get("path")
        if not isinstance(path, str) or not path.startswith("/dev/"):
            raise ValueError(f"{field}.path: must be an absolute path under /dev, got {path!r}")
        typ = d.get("type")
        if typ not in ("c", "b", "u", "p"):
            raise ValueError(f"{field}.type: {typ!r} is not one of c, b, u, p")
        if typ != "p" and (not isinstance(d.get("major"), int) or not isinstance(d.get("minor"), int)):
            raise ValueError(f"{field}: major and minor are required for type {typ!r}")
        mode = d.get("fileMode", 0o666)
        wanted[path] = ("c" if typ == "u" else typ, d.get("major", 0), d.get("minor", 0),
                        mode & 0o7777, d.get("uid", 0), d.get("gid", 0))
    for path, (typ, major, minor, mode, uid, gid) in wanted.items():
        target = secure_join(rootfs, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if userns:  # mknod is not allowed in a user namespace: bind the host's node
            _mkfile(target)
            s.mount(path, target, None, s.MS_BIND)
            continue
        kind = {"c": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}[typ]
        try:
            os.unlink(target)
        except FileNotFoundError:
            pass
        os.mknod(target, kind | mode, os.makedev(major, minor))
        os.chmod(target, mode)  # mknod is subject to umask
        if uid or gid:
            os.chown(target, uid, gid)


def dev_symlinks(rootfs: str) -> None:
    links = [("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"), ("/proc/self/fd/1", "stdout"),
             ("/proc/self/fd/2", "stderr")]
    if os.path.exists("/proc/kcore"):
        links.append(("/proc/kcore", "core"))
    for src, name in links:
        try:
            os.symlink(src, f"{rootfs}/dev/{name}")
        except FileExistsError:
            pass
    ptmx = f"{rootfs}/dev/ptmx"
    if os.path.isdir(f"{rootfs}/dev/pts"):
        try:
            os.unlink(ptmx)
        except FileNotFoundError:
            pass
        os.symlink("pts/ptmx", ptmx)


def pivot_root(rootfs: str) -> None:
    """Switch to ``rootfs`` and detach the old root (runc's pivot_root(".", ".") trick)."""
    oldroot = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    newroot = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fchdir(newroot)
        s.pivot_root(".", ".")
        os.fchdir(oldroot)
        # Keep the unmount of the old root from propagating to the host.
        s.mount(None, ".", None, s.MS_SLAVE | s.MS_REC)
        s.umount2(".", s.MNT_DETACH)
        os.chdir("/")
    finally:
        os.close(oldroot)
        os.close(newroot)


def move_root(rootfs: str) -> None:
    """--no-pivot: MS_MOVE the rootfs over / and chroot (for roots on a ramdisk)."""
    os.chdir(rootfs)
    s.mount(rootfs, "/", None, s.MS_MOVE)
    os.chroot(".")
    os.chdir("/")


def remount_readonly(path: str) -> None:
    s.mount(None, path, None, s.MS_BIND | s.MS_REMOUNT | s.MS_RDONLY | _remount_flags(path))


def mask_paths(paths: list[str]) -> None:
    """Hide files behind /dev/null and directories behind a read-only tmpfs."""
    for p in paths:
        try:
            s.mount("/dev/null", p, None, s.MS_BIND)
        except OSError as e:
            if e.errno == 2:
                continue
            if e.errno != 20:  # ENOTDIR: it is a directory
                raise
            s.mount("tmpfs", p, "tmpfs", s.MS_RDONLY)


def readonly_paths(paths: list[str]) -> None:
    for p in paths:
        try:
            s.mount(p, p, None, s.MS_BIND | s.MS_REC)
        except OSError as e:
            if e.errno == 2:
                continue
            raise
        s.mount(None, p, None,
                s.MS_BIND | s.MS_REMOUNT | s.MS_RDONLY | s.MS_REC | _remount_flags(p))
