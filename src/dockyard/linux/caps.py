"""Linux capabilities: names ↔ numbers and applying an OCI ``process.capabilities`` object.

Order (as runc): drop the bounding set while we still hold CAP_SETPCAP, keep capabilities
across the uid change (PR_SET_KEEPCAPS), change uid/gid, then ``apply_sets`` sets effective,
permitted and inheritable with capset(2) and raises the ambient set.
"""

from __future__ import annotations

from dockyard.linux import syscalls as s

NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
NUMBERS = {n: i for i, n in enumerate(NAMES)}


def last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return len(NAMES) - 1


def mask(names: list[str] | None, field: str) -> int:
    """Bit mask of capability ``names``; unknown names raise ``ValueError`` naming ``field``."""
    m = 0
    for n in names or ():
        num = NUMBERS.get(n.upper() if n.upper().startswith("CAP_") else "CAP_" + n.upper())
        if num is None:
            raise ValueError(f"{field}: unknown capability {n!r}")
        m |= 1 << num
    return m


def drop_bounding(keep: int) -> None:
    """Drop every capability not in ``keep`` from the bounding set."""
    for cap in range(last_cap() + 1):
        if not keep & (1 << cap):
            try:
                s.prctl(s.PR_CAPBSET_DROP, cap)
            except OSError as e:
                if e.errno != 22:  # EINVAL: a capability this kernel does not know
                    raise


def apply_sets(effective: int, permitted: int, inheritable: int, ambient: int) -> None:
    s.capset(effective, permitted, inheritable)
    if ambient:
        for cap in range(last_cap() + 1):
            if ambient & (1 << cap):
                # Raising an ambient cap needs it permitted and inheritable; runc ignores
                # failures here too (older kernels lack ambient capabilities).
                try:
                    s.prctl(s.PR_CAP_AMBIENT, s.PR_CAP_AMBIENT_RAISE, cap)
                except OSError:
                    pass
