"""``docker update`` of a running container's resources by writing its cgroup files.

Used when the runtime has no ``update`` command (ours); runc's ``update`` is used otherwise.
The cgroup paths come from ``/proc/<init pid>/cgroup``; v1 and v2 are both handled. ``res`` is
the OCI ``linux.resources`` shape (``memory``, ``cpu``, ``pids``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dockyard.daemon.stats import cgroup_dirs
from dockyard.errors import Conflict, InvalidArgument


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except FileNotFoundError:
        raise Conflict(f"cgroup file {path} is missing: is the container running?") from None
    except OSError as e:
        raise InvalidArgument(f"cannot set {path.name} to {value}: {e.strerror}") from None


def _read_int(path: Path) -> int:
    try:
        v = path.read_text().strip()
        return -1 if v == "max" else int(v)
    except (OSError, ValueError):
        return -1


def apply(pid: int, res: dict[str, Any]) -> None:
    paths = cgroup_dirs(pid)
    if not paths:
        raise Conflict("the container's cgroups are not found (is it running?)")
    mem = res.get("memory") or {}
    cpu = res.get("cpu") or {}
    pids = res.get("pids") or {}
    if "memory" in paths:  # v1
        m = paths["memory"]
        limit, swap = mem.get("limit"), mem.get("swap")
        if limit is not None:
            cur = _read_int(m / "memory.limit_in_bytes")
            # memsw must stay >= limit at every step: order the two writes accordingly
            if swap is not None and (cur < 0 or limit > cur):
                _write(m / "memory.memsw.limit_in_bytes", str(swap))
                _write(m / "memory.limit_in_bytes", str(limit))
            else:
                _write(m / "memory.limit_in_bytes", str(limit))
                if swap is not None:
                    _write(m / "memory.memsw.limit_in_bytes", str(swap))
        if mem.get("reservation") is not None:
            _write(m / "memory.soft_limit_in_bytes", str(mem["reservation"]))
        c = paths.get("cpu")
        if c is not None:
            if cpu.get("shares"):
                _write(c / "cpu.shares", str(cpu["shares"]))
            if cpu.get("period"):
                _write(c / "cpu.cfs_period_us", str(cpu["period"]))
            if cpu.get("quota"):
                _write(c / "cpu.cfs_quota_us", str(cpu["quota"]))
        cs = paths.get("cpuset")
        if cs is not None:
            if cpu.get("cpus"):
                _write(cs / "cpuset.cpus", cpu["cpus"])
            if cpu.get("mems"):
                _write(cs / "cpuset.mems", cpu["mems"])
        p = paths.get("pids")
        if p is not None and pids.get("limit"):
            _write(p / "pids.max", str(pids["limit"]))
        return
    u = paths["unified"]  # v2
    if mem.get("limit") is not None:
        _write(u / "memory.max", str(mem["limit"]))
        if mem.get("swap") is not None:
            sw = mem["swap"]
            _write(u / "memory.swap.max", "max" if sw < 0 else str(max(sw - mem["limit"], 0)))
    if cpu.get("quota") or cpu.get("period"):
        _write(u / "cpu.max", f"{cpu.get('quota') or 'max'} {cpu.get('period') or 100000}")
    if cpu.get("shares"):
        _write(u / "cpu.weight", str(max(1, min(10000, 1 + (cpu["shares"] - 2) * 9999 // 262142))))
    if cpu.get("cpus"):
        _write(u / "cpuset.cpus", cpu["cpus"])
    if pids.get("limit"):
        _write(u / "pids.max", str(pids["limit"]))
