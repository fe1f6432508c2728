"""OCI ``linux.seccomp`` (Docker's profile format) → a seccomp BPF program.

``compile(profile, cache_dir=None)`` runs in the runtime *before* fork: it builds the filter
with libseccomp (a bad profile fails early with a ``ValueError`` naming the field) and
exports the BPF program; ``load(program)`` runs in the container's process right before exec
and installs it with prctl(PR_SET_SECCOMP). As runc does: rules whose action equals the
default action are skipped (libseccomp rejects them), unknown syscall names are skipped (a
profile lists syscalls of newer kernels), and no_new_privs is left to the runtime
(``process.noNewPrivileges``).

Cost and cache: for Docker's default profile on three architectures libseccomp takes ~5 ms
to build and ~10 ms to generate BPF, on every container start. With ``cache_dir`` the BPF is
kept by the SHA-256 of the profile, so a profile seen before costs a file read::

    <cache_dir>/<sha256 of the profile JSON and the machine>.bpf   (struct sock_filter[])

Why not pyseccomp: importing it runs ``ctypes.util.find_library`` (subprocesses, ``re``,
``shutil``), 20-40 ms per start. libseccomp's C API is small; it is called here through
``_ctypes`` like ``syscalls``, loading ``libseccomp.so.2`` by its soname.
"""

from __future__ import annotations

import _ctypes
import os
import sys

# Actions (seccomp.h)
ACT_KILL_PROCESS = 0x80000000
ACT_KILL_THREAD = 0x00000000
ACT_TRAP = 0x00030000
ACT_LOG = 0x7FFC0000
ACT_ALLOW = 0x7FFF0000
_ACT_ERRNO = 0x00050000
_ACT_TRACE = 0x7FF00000
_ERRNO_EPERM = 1
_ATTR_CTL_NNP = 3

_OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
        "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}

_LE, _64 = 0x40000000, 0x80000000  # __AUDIT_ARCH_LE, __AUDIT_ARCH_64BIT
ARCHES = {  # SCMP_ARCH_* → audit arch token (ELF machine | flags)
    "X86": 3 | _LE, "X86_64": 62 | _64 | _LE, "X32": 62 | _LE, "ARM": 40 | _LE,
    "AARCH64": 183 | _64 | _LE, "MIPS": 8, "MIPS64": 8 | _64, "MIPS64N32": 8 | _64 | 0x20000000,
    "MIPSEL": 8 | _LE, "MIPSEL64": 8 | _64 | _LE, "MIPSEL64N32": 8 | _64 | _LE | 0x20000000,
    "PPC": 20, "PPC64": 21 | _64, "PPC64LE": 21 | _64 | _LE, "S390": 22, "S390X": 22 | _64,
    "PARISC": 15, "PARISC64": 15 | _64, "RISCV64": 243 | _64 | _LE,
}


class _Int(_ctypes._SimpleCData):
    _type_ = "i"


class _UInt(_ctypes._SimpleCData):
    _type_ = "I"


class _VoidP(_ctypes._SimpleCData):
    _type_ = "P"


class _FnInt(_ctypes.CFuncPtr):
    _flags_ = _ctypes.FUNCFLAG_CDECL
    _restype_ = _Int


class _FnPtr(_ctypes.CFuncPtr):
    _flags_ = _ctypes.FUNCFLAG_CDECL
    _restype_ = _VoidP


class _Lib:
    def __init__(self) -> None:
        self._handle = _ctypes.dlopen("libseccomp.so.2", 0)


_lib: _Lib | None = None
_fns: dict[str, _ctypes.CFuncPtr] = {}


def _fn(name: str, kind: type = _FnInt) -> _ctypes.CFuncPtr:
    fn = _fns.get(name)
    if fn is not None:
        return fn
    global _lib
    if _lib is None:
        try:
            _lib = _Lib()
        except OSError as e:
            raise ValueError(f"seccomp is not available on this host (libseccomp.so.2: {e})") \
                from None
    fn = _fns[name] = kind((name, _lib))
    return fn


class Filter:
    """A built (not yet loaded) libseccomp filter context."""

    def __init__(self, default_action: int) -> None:
        ctx = _fn("seccomp_init", _FnPtr)(_UInt(default_action))
        if not ctx:
            raise ValueError("seccomp_init failed: invalid default action")
        self.ctx = ctx
        self.default = default_action

    def _call(self, name: str, *args: object) -> int:
        return _fn(name)(_VoidP(self.ctx), *args)

    def set_attr(self, attr: int, value: int) -> None:
        r = self._call("seccomp_attr_set", attr, _UInt(value))
        if r < 0:
            raise OSError(-r, f"seccomp_attr_set({attr}, {value}): {os.strerror(-r)}")

    def add_arch(self, token: int) -> None:
        r = self._call("seccomp_arch_add", _UInt(token))
        if r < 0 and r != -17:  # EEXIST: the native arch is always there
            raise OSError(-r, f"seccomp_arch_add({token:#x}): {os.strerror(-r)}")

    def add_rule(self, action: int, syscall: int, args: list[tuple[int, int, int, int]]) -> None:
        # struct scmp_arg_cmp {unsigned int arg; enum scmp_compare op; u64 datum_a, datum_b}
        bo = sys.byteorder
        arr = b"".join(a.to_bytes(4, bo) + op.to_bytes(4, bo) + (da & 2**64 - 1).to_bytes(8, bo)
                       + (db & 2**64 - 1).to_bytes(8, bo) for a, op, da, db in args)
        r = self._call("seccomp_rule_add_array", _UInt(action), syscall, _UInt(len(args)),
                       arr or None)
        if r < 0:
            raise OSError(-r, os.strerror(-r))

    def export_bpf(self) -> bytes:
        """The BPF program libseccomp generates (an array of struct sock_filter)."""
        fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
        try:
            r = self._call("seccomp_export_bpf", fd)
            if r < 0:
                raise OSError(-r, f"seccomp_export_bpf: {os.strerror(-r)}")
            size = os.lseek(fd, 0, os.SEEK_END)
            return os.pread(fd, size, 0)
        finally:
            os.close(fd)

    def release(self) -> None:
        if self.ctx:
            _fn("seccomp_release", _FnPtr)(_VoidP(self.ctx))
            self.ctx = None


class _Char(_ctypes._SimpleCData):
    _type_ = "c"


class Program:
    """A seccomp BPF program ready to load (``bpf``: the struct sock_filter array)."""

    __slots__ = ("bpf", "_keep")

    def __init__(self, bpf: bytes) -> None:
        if not bpf or len(bpf) % 8 or len(bpf) // 8 > 0xFFFF:
            raise ValueError(f"seccomp: invalid BPF program ({len(bpf)} bytes)")
        self.bpf = bpf
        self._keep: list[object] = []

    def load(self) -> None:
        """prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &sock_fprog): needs no_new_privs or
        CAP_SYS_ADMIN, like libseccomp's own seccomp_load."""
        from dockyard.linux import syscalls

        def array(data: bytes) -> _ctypes.Array:
            cls = type("_Buf", (_ctypes.Array,), {"_type_": _Char, "_length_": len(data)})
            buf = cls.from_buffer_copy(data)
            self._keep.append(buf)
            return buf

        prog = array(self.bpf)
        # struct sock_fprog {unsigned short len; struct sock_filter *filter;} (padded)
        ptr_size = _ctypes.sizeof(_VoidP)
        fprog = array((len(self.bpf) // 8).to_bytes(2, sys.byteorder) + bytes(ptr_size - 2)
                      + _ctypes.addressof(prog).to_bytes(ptr_size, sys.byteorder))
        try:
            syscalls.prctl(22, 2, _ctypes.addressof(fprog))  # PR_SET_SECCOMP, MODE_FILTER
        except OSError as e:
            raise OSError(e.errno, f"seccomp: loading the filter: {os.strerror(e.errno or 0)}") \
                from None


def _action(name: object, errno_ret: object, field: str) -> int:
    simple = {"SCMP_ACT_ALLOW": ACT_ALLOW, "SCMP_ACT_KILL": ACT_KILL_THREAD,
              "SCMP_ACT_KILL_THREAD": ACT_KILL_THREAD, "SCMP_ACT_KILL_PROCESS": ACT_KILL_PROCESS,
              "SCMP_ACT_TRAP": ACT_TRAP, "SCMP_ACT_LOG": ACT_LOG}
    if name in simple:
        return simple[name]  # type: ignore[index]
    if name in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        base = _ACT_ERRNO if name == "SCMP_ACT_ERRNO" else _ACT_TRACE
        value = _ERRNO_EPERM if errno_ret is None else errno_ret
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"{field}: errnoRet must be a non-negative integer")
        return base | (value & 0xFFFF)
    raise ValueError(f"{field}: unsupported seccomp action {name!r}")


def _key(profile: dict) -> str:
    from dockyard.runtime import fastjson

    try:
        from _sha256 import sha256  # Python 3.11
    except ImportError:  # 3.12+
        from _sha2 import sha256  # type: ignore[no-redef]
    data = f"{os.uname().machine}\n".encode() + fastjson.dumps(profile).encode()
    return sha256(data).hexdigest()


def compile(profile: dict, field: str = "linux.seccomp", cache_dir: str | None = None
            ) -> Program:
    """The BPF program for an OCI seccomp object (from ``cache_dir`` when seen before)."""
    if not isinstance(profile, dict):
        raise ValueError(f"{field}: must be an object")
    path = ""
    if cache_dir:
        path = f"{cache_dir}/{_key(profile)}.bpf"
        try:
            with open(path, "rb") as f:
                return Program(f.read())
        except (OSError, ValueError):
            pass
    filt = build(profile, field)
    try:
        bpf = filt.export_bpf()
    finally:
        filt.release()
    if path:
        try:
            os.makedirs(cache_dir, mode=0o700, exist_ok=True)  # type: ignore[arg-type]
            tmp = f"{path}.{os.getpid()}"
            with open(tmp, "wb") as f:
                f.write(bpf)
            os.replace(tmp, path)
        except OSError:
            pass  # the cache is an optimisation only
    return Program(bpf)


def build(profile: dict, field: str = "linux.seccomp") -> Filter:
    """The libseccomp filter context for an OCI seccomp object (not loaded)."""
    default = _action(profile.get("defaultAction"), profile.get("defaultErrnoRet"),
                      f"{field}.defaultAction")
    filt = Filter(default)
    filt.set_attr(_ATTR_CTL_NNP, 0)
    for i, arch in enumerate(profile.get("architectures") or ()):
        token = ARCHES.get(str(arch).removeprefix("SCMP_ARCH_"))
        if token is None:
            raise ValueError(f"{field}.architectures[{i}]: unknown architecture {arch!r}")
        try:
            filt.add_arch(token)
        except OSError as e:
            raise ValueError(f"{field}.architectures[{i}]: {e.strerror}") from None
    resolve = _fn("seccomp_syscall_resolve_name")
    for i, rule in enumerate(profile.get("syscalls") or ()):
        rf = f"{field}.syscalls[{i}]"
        if not isinstance(rule, dict):
            raise ValueError(f"{rf}: must be an object")
        action = _action(rule.get("action"), rule.get("errnoRet"), rf + ".action")
        if action == default:
            continue
        args: list[tuple[int, int, int, int]] = []
        for j, a in enumerate(rule.get("args") or ()):
            op = _OPS.get(a.get("op")) if isinstance(a, dict) else None
            if op is None or not isinstance(a.get("index"), int) or not 0 <= a["index"] < 6:
                raise ValueError(f"{rf}.args[{j}]: bad index or op")
            args.append((a["index"], op, int(a.get("value", 0)), int(a.get("valueTwo", 0))))
        names = rule.get("names") or ([rule["name"]] if rule.get("name") else [])
        for name in names:
            nr = resolve(str(name).encode())
            if nr < 0:
                continue  # unknown on this kernel/arch: skip like runc
            indexes = [a[0] for a in args]
            try:
                if len(set(indexes)) == len(indexes):
                    filt.add_rule(action, nr, args)
                else:  # libseccomp wants one comparison per argument: split the rule
                    for a in args:
                        filt.add_rule(action, nr, [a])
            except OSError as e:
                raise ValueError(f"{rf}: cannot add rule for {name!r}: {e.strerror}") from None
    return filt


def load(program: Program) -> None:
    program.load()
