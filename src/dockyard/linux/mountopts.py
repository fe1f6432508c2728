"""OCI mount ``options`` → (mount flags, propagation flags, data string), as runc parses them.

``parse(["nosuid", "ro", "mode=755", "rprivate"])`` returns
``MountOpts(flags=MS_NOSUID|MS_RDONLY, clear=0, propagation=[MS_PRIVATE|MS_REC], data="mode=755",
recursive_bind=False)``. Unknown ``key=value`` or bare words are passed to the filesystem as
data, as the kernel expects (``size=65536k``, ``newinstance``, ``ptmxmode=0666``).
"""

from __future__ import annotations

from dockyard.linux import syscalls as s

# option -> (clear?, flag)
_FLAGS: dict[str, tuple[bool, int]] = {
    "async": (True, s.MS_SYNCHRONOUS),
    "atime": (True, s.MS_NOATIME),
    "bind": (False, s.MS_BIND),
    "defaults": (False, 0),
    "dev": (True, s.MS_NODEV),
    "diratime": (True, s.MS_NODIRATIME),
    "dirsync": (False, s.MS_DIRSYNC),
    "exec": (True, s.MS_NOEXEC),
    "mand": (False, s.MS_MANDLOCK),
    "noatime": (False, s.MS_NOATIME),
    "nodev": (False, s.MS_NODEV),
    "nodiratime": (False, s.MS_NODIRATIME),
    "noexec": (False, s.MS_NOEXEC),
    "nomand": (True, s.MS_MANDLOCK),
    "norelatime": (True, s.MS_RELATIME),
    "nostrictatime": (True, s.MS_STRICTATIME),
    "nosuid": (False, s.MS_NOSUID),
    "nosymfollow": (False, s.MS_NOSYMFOLLOW),
    "rbind": (False, s.MS_BIND | s.MS_REC),
    "relatime": (False, s.MS_RELATIME),
    "remount": (False, s.MS_REMOUNT),
    "ro": (False, s.MS_RDONLY),
    "rw": (True, s.MS_RDONLY),
    "strictatime": (False, s.MS_STRICTATIME),
    "suid": (True, s.MS_NOSUID),
    "sync": (False, s.MS_SYNCHRONOUS),
    "lazytime": (False, s.MS_LAZYTIME),
    "nolazytime": (True, s.MS_LAZYTIME),
}

PROPAGATION: dict[str, int] = {
    "private": s.MS_PRIVATE,
    "shared": s.MS_SHARED,
    "slave": s.MS_SLAVE,
    "unbindable": s.MS_UNBINDABLE,
    "rprivate": s.MS_PRIVATE | s.MS_REC,
    "rshared": s.MS_SHARED | s.MS_REC,
    "rslave": s.MS_SLAVE | s.MS_REC,
    "runbindable": s.MS_UNBINDABLE | s.MS_REC,
}

# Options runc accepts but that change nothing for a plain mount(2) here.
_IGNORED = {"tmpcopyup", "idmap", "ridmap", "recursive"}


class MountOpts:
    __slots__ = ("flags", "propagation", "data", "recursive_bind")

    def __init__(self, flags: int, propagation: list[int], data: str,
                 recursive_bind: bool) -> None:
        self.flags = flags
        self.propagation = propagation
        self.data = data
        self.recursive_bind = recursive_bind


def parse(options: list[str]) -> MountOpts:
    flags = 0
    prop: list[int] = []
    data: list[str] = []
    rbind = False
    for opt in options:
        known = _FLAGS.get(opt)
        if known is not None:
            clear, flag = known
            if clear:
                flags &= ~flag
            else:
                flags |= flag
            if opt == "rbind":
                rbind = True
        elif opt in PROPAGATION:
            prop.append(PROPAGATION[opt])
        elif opt in _IGNORED:
            continue
        else:
            data.append(opt)
    return MountOpts(flags, prop, ",".join(data), rbind)


def names() -> list[str]:
    """Every option word this parser knows (for ``features``)."""
    return sorted(set(_FLAGS) | set(PROPAGATION))
