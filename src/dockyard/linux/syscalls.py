"""ctypes wrappers for the system calls Python's ``os`` module lacks (Python 3.11).

Each wrapper raises ``OSError`` whose ``errno`` is the kernel's and whose message names the
syscall and its arguments, e.g. ``mount("proc", "/r/proc", "proc", 0x6, None): Operation not
permitted``. Callers classify by ``errno``, never by the text.

Import cost matters (this module is on the runtime's start-up path): it uses the C module
``_ctypes`` directly (about 0.2 ms) rather than the ``ctypes`` package (about 3 ms, most of it
building the package's type zoo), and looks each libc symbol up on first use.
"""

from __future__ import annotations

import _ctypes
import os
import sys

# clone/unshare/setns flags (linux/sched.h)
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080

# mount flags (linux/mount.h)
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 0x20000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000
MS_LAZYTIME = 0x2000000
MNT_DETACH = 0x2

# prctl options (linux/prctl.h)
PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

_MACHINE = os.uname().machine
# Syscalls glibc has no wrapper for. New syscalls (>= 424) share numbers on all arches.
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}.get(
    _MACHINE, 155
)
_SYS_CLOSE_RANGE = 436
_SYS_KEYCTL = {"x86_64": 250, "aarch64": 219, "riscv64": 219, "ppc64le": 311,
               "s390x": 280}.get(_MACHINE, 250)
CLOSE_RANGE_CLOEXEC = 1 << 2


class _Int(_ctypes._SimpleCData):
    _type_ = "i"


class _ULong(_ctypes._SimpleCData):
    _type_ = "L"


class _Long(_ctypes._SimpleCData):
    _type_ = "l"


class _UInt(_ctypes._SimpleCData):
    _type_ = "I"


class _Fn(_ctypes.CFuncPtr):
    # cdecl, int result, errno captured per call (read back with _ctypes.get_errno()).
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = _Int


class _Libc:
    def __init__(self) -> None:
        self._handle = _ctypes.dlopen(None, 0)
        self._fns: dict[str, _Fn] = {}

    def __getattr__(self, name: str) -> _Fn:
        fn = self._fns.get(name)
        if fn is None:
            fn = self._fns[name] = _Fn((name, self))
        return fn


_libc: _Libc | None = None


def libc() -> _Libc:
    global _libc
    if _libc is None:
        _libc = _Libc()
    return _libc


def _fail(call: str) -> OSError:
    err = _ctypes.get_errno()
    return OSError(err, f"{call}: {os.strerror(err)}")


def _b(s: str | bytes | None) -> bytes | None:
    if s is None or isinstance(s, bytes):
        return s
    return s.encode()


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0,
          data: str | None = None) -> None:
    """mount(2)."""
    if libc().mount(_b(source), _b(target), _b(fstype), _ULong(flags), _b(data)) != 0:
        raise _fail(f"mount({source!r}, {target!r}, {fstype!r}, {flags:#x}, {data!r})")


def umount2(target: str, flags: int = 0) -> None:
    """umount2(2)."""
    if libc().umount2(_b(target), flags) != 0:
        raise _fail(f"umount2({target!r}, {flags:#x})")


def pivot_root(new_root: str, put_old: str) -> None:
    """pivot_root(2) (no glibc wrapper: raw syscall)."""
    if libc().syscall(_Long(_SYS_PIVOT_ROOT), _b(new_root), _b(put_old)) != 0:
        raise _fail(f"pivot_root({new_root!r}, {put_old!r})")


def unshare(flags: int) -> None:
    """unshare(2)."""
    if libc().unshare(flags) != 0:
        raise _fail(f"unshare({flags:#x})")


def setns(fd: int, nstype: int = 0) -> None:
    """setns(2)."""
    if libc().setns(fd, nstype) != 0:
        raise _fail(f"setns({fd}, {nstype:#x})")


def sethostname(name: str) -> None:
    raw = name.encode()
    if libc().sethostname(raw, len(raw)) != 0:
        raise _fail(f"sethostname({name!r})")


def setdomainname(name: str) -> None:
    raw = name.encode()
    if libc().setdomainname(raw, len(raw)) != 0:
        raise _fail(f"setdomainname({name!r})")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    """prctl(2); returns the call's non-negative result."""
    args = (_ULong(arg2), _ULong(arg3), _ULong(arg4), _ULong(arg5))
    r = libc().prctl(option, *args)
    if r < 0:
        raise _fail(f"prctl({option}, {arg2}, {arg3}, {arg4}, {arg5})")
    return r


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """capset(2) with _LINUX_CAPABILITY_VERSION_3 (two 32-bit words per set)."""
    def words(*vals: int) -> bytes:
        return b"".join((v & 0xFFFFFFFF).to_bytes(4, sys.byteorder) for v in vals)

    # struct __user_cap_header_struct {u32 version; int pid} and two __user_cap_data_struct
    # {u32 effective, permitted, inheritable}; the kernel only reads them on success.
    hdr = words(0x20080522, 0)
    data = words(effective, permitted, inheritable,
                 effective >> 32, permitted >> 32, inheritable >> 32)
    if libc().capset(hdr, data) != 0:
        raise _fail(f"capset(eff={effective:#x}, perm={permitted:#x}, inh={inheritable:#x})")


def join_session_keyring(name: str) -> None:
    """keyctl(KEYCTL_JOIN_SESSION_KEYRING, name): a fresh session keyring, not the caller's.
    Kernels without keyrings (ENOSYS) are tolerated, as runc does."""
    if libc().syscall(_Long(_SYS_KEYCTL), 1, _b(name)) < 0:
        err = _fail(f"keyctl(KEYCTL_JOIN_SESSION_KEYRING, {name!r})")
        if err.errno != 38:
            raise err


def setrlimit(resource: int, soft: int, hard: int) -> None:
    """setrlimit(2); ``resource`` is the RLIMIT_* number (struct rlimit: two unsigned longs).
    A negative value (Python's ``resource.RLIM_INFINITY``) or >= 2**64 means unlimited."""

    def rlim(v: int) -> bytes:
        return (2**64 - 1 if v < 0 or v >= 2**64 else v).to_bytes(8, sys.byteorder)

    lim = rlim(soft) + rlim(hard)
    if libc().setrlimit(resource, lim) != 0:
        raise _fail(f"setrlimit({resource}, {soft}, {hard})")


class _Char(_ctypes._SimpleCData):
    _type_ = "c"


class _IfReq(_ctypes.Array):
    # struct ifreq: 16-byte interface name + a 24-byte union (we use ifr_flags, a short)
    _type_ = _Char
    _length_ = 40


_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914


def interface_up(name: str) -> None:
    """Set IFF_UP on ``name`` (e.g. ``lo`` in a new network namespace) with two ioctls."""
    fd = libc().socket(2, 2 | 0o2000000, 0)  # AF_INET, SOCK_DGRAM|SOCK_CLOEXEC
    if fd < 0:
        raise _fail("socket(AF_INET, SOCK_DGRAM)")
    try:
        req = _IfReq()
        req.raw = name.encode().ljust(40, b"\0")  # type: ignore[attr-defined]
        if libc().ioctl(fd, _ULong(_SIOCGIFFLAGS), req) != 0:
            raise _fail(f"ioctl(SIOCGIFFLAGS, {name!r})")
        raw = req.raw  # type: ignore[attr-defined]
        flags = int.from_bytes(raw[16:18], sys.byteorder) | 0x1  # IFF_UP
        req.raw = raw[:16] + flags.to_bytes(2, sys.byteorder) + raw[18:]  # type: ignore[attr-defined]
        if libc().ioctl(fd, _ULong(_SIOCSIFFLAGS), req) != 0:
            raise _fail(f"ioctl(SIOCSIFFLAGS, {name!r}, IFF_UP)")
    finally:
        os.close(fd)


def close_range_cloexec(first: int) -> None:
    """Mark every fd >= ``first`` close-on-exec (close_range(2), falling back to /proc)."""
    if libc().syscall(_Long(_SYS_CLOSE_RANGE), _UInt(first), _UInt(0xFFFFFFFF),
                      _UInt(CLOSE_RANGE_CLOEXEC)) == 0:
        return
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd >= first:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass  # the fd of the listdir itself, already closed
