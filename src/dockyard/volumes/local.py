"""The local driver's options (``docker volume create -o type=... -o o=... -o device=...``) and
the mount they describe.

A volume without options is a plain folder (``<root>/<name>/_data``). With ``type`` and
``device`` it is a filesystem mounted on ``_data`` while containers use it, exactly as
``mount -t <type> -o <o> <device> <root>/<name>/_data`` (``type=tmpfs device=tmpfs
o=size=64m``; ``type=none o=bind device=/host/dir``). Validation is dockerd's: only ``type``,
``o``, ``device`` and ``size`` exist; ``device`` and ``type`` need each other; ``o`` needs
both; ``size`` (an XFS project quota in dockerd) is refused, as dockerd does without quota
support. Mount errors name the call and hide a ``password=`` option's value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from dockyard.errors import InvalidArgument, Unavailable
from dockyard.linux import mountopts, syscalls

VALID_OPTS = ("type", "o", "device", "size")
_REQUIRES = {"device": ("type",), "type": ("device",), "o": ("device", "type")}


def validate(opts: Mapping[str, str]) -> None:
    for k in opts:
        if k not in VALID_OPTS:
            raise InvalidArgument(f'invalid option: "{k}"')
    if "size" in opts:
        raise InvalidArgument("quota size requested but no quota support")
    for k, needs in _REQUIRES.items():
        if k in opts:
            for n in needs:
                if n not in opts:
                    raise InvalidArgument(f'missing required option: "{n}"')


def needs_mount(opts: Mapping[str, str]) -> bool:
    return bool(opts.get("type") or opts.get("device"))


def _hide_password(text: str) -> str:
    return re.sub(r"(password=)[^,]*", r"\1********", text)


def mount(opts: Mapping[str, str], target: str) -> None:
    device = opts.get("device", "")
    if not device:
        raise InvalidArgument("missing device in volume options")
    mtype = opts.get("type") or None
    parsed = mountopts.parse([o for o in opts.get("o", "").split(",") if o])
    flags = parsed.flags
    try:
        syscalls.mount(device, target, None if mtype == "none" else mtype, flags, parsed.data or None)
        if parsed.flags & syscalls.MS_BIND and parsed.flags & syscalls.MS_RDONLY:
            # a bind mount ignores MS_RDONLY on the first call: remount to make it read-only
            syscalls.mount(None, target, None, flags | syscalls.MS_REMOUNT, None)
    except OSError as e:
        raise Unavailable(_hide_password(
            f"failed to mount local volume: mount {device}:{target}, flags: {hex(flags)}, "
            f"data: {parsed.data}: {e.strerror}")) from None


def unmount(target: str) -> None:
    try:
        syscalls.umount2(target, syscalls.MNT_DETACH)
    except OSError as e:
        if is_mountpoint(target):
            raise Unavailable(f"unmount {target}: {e.strerror}") from None


def _unescape(s: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def is_mountpoint(path: str) -> bool:
    """Is ``path`` a mount point in this mount namespace? (st_dev can't tell: a bind mount
    from the same filesystem keeps it.)"""
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(_unescape(line.split()[4]) == real for line in f)
