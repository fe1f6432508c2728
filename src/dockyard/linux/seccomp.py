"""OCI ``linux.seccomp`` (Docker's profile format) → a libseccomp filter, via pyseccomp.

``compile(profile)`` runs in the runtime *before* fork (it allocates and fills the libseccomp
context; a bad profile fails early with a ``ValueError`` naming the field); ``load(filter)``
runs in the container's init right before exec. As runc does: rules whose action equals the
default action are skipped (libseccomp rejects them), unknown syscall names are skipped (a
profile lists syscalls of newer kernels), and libseccomp's own no_new_privs is switched off
because the runtime sets no_new_privs itself from ``process.noNewPrivileges``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


_ERRNO_EPERM = 1


def _action(ps: Any, name: Any, errno_ret: Any, field: str) -> int:
    if name == "SCMP_ACT_ALLOW":
        return ps.ALLOW
    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return ps.KILL
    if name == "SCMP_ACT_KILL_PROCESS":
        return ps.KILL_PROCESS
    if name == "SCMP_ACT_TRAP":
        return ps.TRAP
    if name == "SCMP_ACT_LOG":
        return ps.LOG
    if name == "SCMP_ACT_ERRNO":
        return ps.ERRNO(_ERRNO_EPERM if errno_ret is None else int(errno_ret))
    if name == "SCMP_ACT_TRACE":
        return ps.TRACE(_ERRNO_EPERM if errno_ret is None else int(errno_ret))
    raise ValueError(f"{field}: unsupported seccomp action {name!r}")


_OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
        "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}


def compile(profile: dict, field: str = "linux.seccomp") -> Any:
    """Build (not load) the filter; returns a ``pyseccomp.SyscallFilter``."""
    try:
        import pyseccomp as ps
    except (ImportError, OSError) as e:
        raise ValueError(f"{field}: seccomp is not available on this host ({e})") from None
    if not isinstance(profile, dict):
        raise ValueError(f"{field}: must be an object")
    default = _action(ps, profile.get("defaultAction"), profile.get("defaultErrnoRet"),
                      f"{field}.defaultAction")
    filt = ps.SyscallFilter(default)
    filt.set_attr(ps.Attr.CTL_NNP, 0)
    for i, arch in enumerate(profile.get("architectures") or ()):
        name = str(arch).removeprefix("SCMP_ARCH_")
        code = getattr(ps.Arch, name, None)
        if code is None:
            raise ValueError(f"{field}.architectures[{i}]: unknown architecture {arch!r}")
        try:
            filt.add_arch(code)
        except OSError as e:
            if e.errno != 17:  # EEXIST: the native arch is already there
                raise ValueError(f"{field}.architectures[{i}]: {e.strerror}") from None
    for i, rule in enumerate(profile.get("syscalls") or ()):
        rf = f"{field}.syscalls[{i}]"
        if not isinstance(rule, dict):
            raise ValueError(f"{rf}: must be an object")
        action = _action(ps, rule.get("action"), rule.get("errnoRet"), rf + ".action")
        if action == default:
            continue
        args = []
        for j, a in enumerate(rule.get("args") or ()):
            op = _OPS.get(a.get("op"))
            if op is None or not isinstance(a.get("index"), int):
                raise ValueError(f"{rf}.args[{j}]: bad index or op {a.get('op')!r}")
            args.append(ps.Arg(a["index"], op, int(a.get("value", 0)), int(a.get("valueTwo", 0))))
        names = rule.get("names") or ([rule["name"]] if rule.get("name") else [])
        for name in names:
            if ps.resolve_syscall(ps.Arch.NATIVE, name) < 0:
                continue  # unknown on this kernel/arch: skip like runc
            indexes = [a._arg for a in args]
            try:
                if len(set(indexes)) == len(indexes):
                    filt.add_rule(action, name, *args)
                else:  # libseccomp wants one comparison per argument: split the rule
                    for a in args:
                        filt.add_rule(action, name, a)
            except OSError as e:
                raise ValueError(f"{rf}: cannot add rule for {name!r}: {e.strerror}") from None
    return filt


def load(filt: Any) -> None:
    try:
        filt.load()
    except OSError as e:
        raise OSError(e.errno, f"seccomp_load: {e.strerror}") from None
