"""Mount plans -> OCI runtime spec ``mounts`` entries, with dockerd's options.

- bind and volume: ``{"type": "bind", "source": host_path, "options": ["rbind", ("ro",)
  propagation]}``; ``bind`` instead of ``rbind`` for ``bind-nonrecursive``; volumes get
  ``rprivate`` (dockerd's default propagation), binds their own (default ``rprivate``).
- tmpfs: ``{"type": "tmpfs", "source": "tmpfs", "options": ["noexec", "nosuid", "nodev",
  "rprivate", <user options>]}`` with later options overriding earlier ones (``exec``
  cancels the default ``noexec``), as dockerd's MergeTmpfsOptions.

Plans must carry ``host_path`` for bind/volume (``VolumeService.mount_all`` fills it).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.volumes.model import TYPE_TMPFS, TYPE_VOLUME, MountPlan
from dockyard.volumes.spec import DEFAULT_PROPAGATION

_TMPFS_DEFAULTS = ["noexec", "nosuid", "nodev", DEFAULT_PROPAGATION]
# flag -> the flag it cancels
_OPPOSITE = {"exec": "noexec", "noexec": "exec", "suid": "nosuid", "nosuid": "suid",
             "dev": "nodev", "nodev": "dev", "ro": "rw", "rw": "ro", "atime": "noatime",
             "noatime": "atime", "diratime": "nodiratime", "nodiratime": "diratime",
             "relatime": "norelatime", "norelatime": "relatime", "strictatime": "nostrictatime",
             "nostrictatime": "strictatime", "sync": "async", "async": "sync"}


def merge_tmpfs_options(options: Iterable[str]) -> list[str]:
    """Later options win: a flag removes its opposite; ``key=value`` replaces the same key;
    propagation words replace each other."""
    out: list[str] = []
    for o in options:
        if not o:
            continue
        if "=" in o:
            key = o.split("=", 1)[0] + "="
            out = [x for x in out if not x.startswith(key)]
        elif o.lstrip("r") in ("private", "shared", "slave", "unbindable"):
            out = [x for x in out if x.lstrip("r") not in ("private", "shared", "slave", "unbindable")]
        else:
            out = [x for x in out if x != o and x != _OPPOSITE.get(o)]
        out.append(o)
    return out


def oci_mount(plan: MountPlan) -> dict[str, Any]:
    if plan.type == TYPE_TMPFS:
        opts = _TMPFS_DEFAULTS + ([o for o in plan.tmpfs_data.split(",") if o])
        if plan.read_only:
            opts.append("ro")
        return {"destination": plan.destination, "type": "tmpfs", "source": "tmpfs",
                "options": merge_tmpfs_options(opts)}
    if not plan.host_path:
        raise InvalidArgument(f"mount {plan.destination}: no host path (volume not mounted)")
    options = ["bind" if plan.non_recursive else "rbind"]
    if plan.read_only:
        options.append("ro")
    options.append(DEFAULT_PROPAGATION if plan.type == TYPE_VOLUME else
                   (plan.propagation or DEFAULT_PROPAGATION))
    return {"destination": plan.destination, "type": "bind", "source": plan.host_path,
            "options": options}


def oci_mounts(plans: Iterable[MountPlan]) -> list[dict[str, Any]]:
    """Entries for ``HostConfig["ExtraMounts"]`` / the spec's ``mounts``, parents first."""
    return [oci_mount(p) for p in sorted(plans, key=lambda p: p.destination.count("/"))]
