"""Seccomp profiles: Dockyard's default, and Docker-format profiles converted to the OCI form.

Our default is a deny list (Docker's is an allow list): every syscall is allowed except those
that let a container reach the kernel's global state (modules, keyrings, clocks, mounts, new
namespaces, ptrace of other processes, BPF, perf...). Rules carry Docker's ``excludes.caps`` so
that, as in Docker, ``--cap-add SYS_ADMIN`` re-enables mount/unshare/setns, ``SYS_PTRACE``
ptrace, and so on. Creating namespaces through ``clone`` is refused flag by flag; ``clone3``
answers ENOSYS so that libcs fall back to ``clone`` (whose flags a filter can read).

Docker's profile format (``defaultAction``, ``archMap``, ``syscalls[].names/action/args/
includes/excludes``) is accepted for ``--security-opt seccomp=<file>``.
"""

from __future__ import annotations

import errno
import platform
from typing import Any

from dockyard.errors import InvalidArgument

EPERM = errno.EPERM

_DENY_ALWAYS = [
    "acct", "create_module", "get_kernel_syms", "kexec_file_load", "kexec_load", "nfsservctl",
    "query_module", "uselib", "ustat", "sysfs", "_sysctl", "lookup_dcookie", "add_key", "keyctl",
    "request_key", "userfaultfd",
]
_DENY_UNLESS: dict[str, list[str]] = {
    "CAP_SYS_ADMIN": ["mount", "umount", "umount2", "unshare", "setns", "pivot_root", "move_mount",
                      "open_tree", "fsopen", "fsconfig", "fsmount", "fspick", "quotactl",
                      "swapon", "swapoff", "name_to_handle_at", "fanotify_init", "bpf",
                      "perf_event_open", "syslog", "mount_setattr"],
    "CAP_SYS_MODULE": ["init_module", "finit_module", "delete_module"],
    "CAP_SYS_BOOT": ["reboot"],
    "CAP_SYS_TIME": ["settimeofday", "clock_settime", "clock_adjtime", "adjtimex"],
    "CAP_SYS_RAWIO": ["iopl", "ioperm"],
    "CAP_SYS_PTRACE": ["ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd"],
    "CAP_DAC_READ_SEARCH": ["open_by_handle_at"],
    "CAP_SYS_NICE": ["mbind", "set_mempolicy", "move_pages", "migrate_pages"],
}
CLONE_NS_FLAGS = [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000]

ARCH_MAP = {
    "x86_64": ("SCMP_ARCH_X86_64", ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
    "aarch64": ("SCMP_ARCH_AARCH64", ["SCMP_ARCH_ARM"]),
}


def default_profile() -> dict[str, Any]:
    """Dockyard's default profile, in Docker's profile format."""
    arch, subs = ARCH_MAP.get(platform.machine(), ("SCMP_ARCH_NATIVE", []))
    rules: list[dict[str, Any]] = [{"names": _DENY_ALWAYS, "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM}]
    for cap, names in _DENY_UNLESS.items():
        rules.append({"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM,
                      "excludes": {"caps": [cap]}})
    for flag in CLONE_NS_FLAGS:
        rules.append({"names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM,
                      "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}],
                      "excludes": {"caps": ["CAP_SYS_ADMIN"]}})
    rules.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS,
                  "excludes": {"caps": ["CAP_SYS_ADMIN"]}})
    return {"defaultAction": "SCMP_ACT_ALLOW", "archMap": [{"architecture": arch, "subArchitectures": subs}],
            "syscalls": rules}


def to_oci(profile: dict[str, Any], caps: list[str]) -> dict[str, Any]:
    """Convert a Docker-format profile to the OCI runtime spec's ``linux.seccomp``."""
    if not isinstance(profile, dict) or "defaultAction" not in profile:
        raise InvalidArgument("seccomp profile: missing defaultAction")
    machine = platform.machine()
    arches: list[str] = list(profile.get("architectures") or [])
    native = ARCH_MAP.get(machine, ("SCMP_ARCH_NATIVE", []))[0]
    for m in profile.get("archMap") or []:
        if m.get("architecture") == native:
            arches = [native, *(m.get("subArchitectures") or [])]
    capset = set(caps)
    out_rules = []
    for rule in profile.get("syscalls") or []:
        inc = rule.get("includes") or {}
        exc = rule.get("excludes") or {}
        if inc.get("caps") and not set(inc["caps"]) <= capset:
            continue
        if exc.get("caps") and set(exc["caps"]) & capset:
            continue
        names = rule.get("names") or ([rule["name"]] if rule.get("name") else [])
        if not names:
            raise InvalidArgument("seccomp profile: a rule has no syscall names")
        r: dict[str, Any] = {"names": names, "action": rule["action"]}
        if "errnoRet" in rule:
            r["errnoRet"] = rule["errnoRet"]
        if rule.get("args"):
            r["args"] = [{k: a[k] for k in ("index", "value", "valueTwo", "op") if k in a}
                         for a in rule["args"]]
        out_rules.append(r)
    out: dict[str, Any] = {"defaultAction": profile["defaultAction"], "syscalls": out_rules}
    if "defaultErrnoRet" in profile:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    if arches:
        out["architectures"] = arches
    return out
