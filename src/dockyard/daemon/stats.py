"""Container resource usage from cgroups (v1 here, v2 where the host has it) -> Docker's stats JSON.

The container's cgroup paths are read from ``/proc/<init pid>/cgroup`` (host view), so this works
whatever parent the runtime nested them under.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from dockyard.daemon.record import ContainerRecord

ROOT = Path("/sys/fs/cgroup")


def _read_int(p: Path) -> int:
    try:
        v = p.read_text().strip()
        return 0 if v == "max" else int(v)
    except (OSError, ValueError):
        return 0


def _kv(p: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        for line in p.read_text().splitlines():
            k, _, v = line.partition(" ")
            if v.strip().lstrip("-").isdigit():
                out[k] = int(v)
    except OSError:
        pass
    return out


def cgroup_dirs(pid: int) -> dict[str, Path]:
    """{controller: cgroup directory} of process ``pid`` (``unified`` for the v2 one), from
    ``/proc/<pid>/cgroup``; empty if the process is gone."""
    out: dict[str, Path] = {}
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        if ctrls == "":
            out["unified"] = ROOT / "unified" / path.lstrip("/") if (ROOT / "unified").is_dir() \
                else ROOT / path.lstrip("/")
        for c in ctrls.split(","):
            if c:
                out[c] = ROOT / c / path.lstrip("/")
                if c == "cpuacct" and not (ROOT / "cpuacct").exists():
                    out[c] = ROOT / "cpu,cpuacct" / path.lstrip("/")
    return out


def _system_cpu() -> int:
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:8]
        return sum(int(x) for x in fields) * 10_000_000  # USER_HZ 100 -> ns
    except (OSError, ValueError):
        return 0


def sample(rec: ContainerRecord, svc: Any) -> dict[str, Any]:
    pid = rec.state.pid
    paths = cgroup_dirs(pid) if pid else {}
    v2 = "memory" not in paths and "unified" in paths
    s: dict[str, Any] = {"read": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".000000000Z",
                         "system": _system_cpu(), "ncpu": os.cpu_count() or 1}
    if v2:
        u = paths["unified"]
        cpu = _kv(u / "cpu.stat")
        s.update(cpu_total=cpu.get("usage_usec", 0) * 1000, cpu_user=cpu.get("user_usec", 0) * 1000,
                 cpu_kernel=cpu.get("system_usec", 0) * 1000, mem_usage=_read_int(u / "memory.current"),
                 mem_limit=_read_int(u / "memory.max"), mem_stats=_kv(u / "memory.stat"),
                 pids=_read_int(u / "pids.current"), pids_limit=_read_int(u / "pids.max"))
    elif paths:
        cpuacct = paths.get("cpuacct")
        mem = paths.get("memory")
        pids = paths.get("pids")
        st = _kv(cpuacct / "cpuacct.stat") if cpuacct else {}
        s.update(cpu_total=_read_int(cpuacct / "cpuacct.usage") if cpuacct else 0,
                 cpu_user=st.get("user", 0) * 10_000_000, cpu_kernel=st.get("system", 0) * 10_000_000,
                 mem_usage=_read_int(mem / "memory.usage_in_bytes") if mem else 0,
                 mem_max=_read_int(mem / "memory.max_usage_in_bytes") if mem else 0,
                 mem_limit=_read_int(mem / "memory.limit_in_bytes") if mem else 0,
                 mem_stats=_kv(mem / "memory.stat") if mem else {},
                 pids=_read_int(pids / "pids.current") if pids else 0,
                 pids_limit=_read_int(pids / "pids.max") if pids else 0)
    from dockyard.network.netstats import container_networks
    nets = container_networks(pid, rec.host_config.get("NetworkMode") or "default")
    if nets is not None:
        s["networks"] = nets
    return s


def to_wire(rec: ContainerRecord, cur: dict[str, Any], prev: dict[str, Any] | None) -> dict[str, Any]:
    def cpu(x: dict[str, Any] | None) -> dict[str, Any]:
        if not x or "cpu_total" not in x:
            return {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                    "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
        return {"cpu_usage": {"total_usage": x["cpu_total"], "usage_in_kernelmode": x["cpu_kernel"],
                              "usage_in_usermode": x["cpu_user"]},
                "system_cpu_usage": x["system"], "online_cpus": x["ncpu"],
                "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
    limit = cur.get("mem_limit", 0)
    host_mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if not limit or limit > host_mem:
        limit = host_mem
    mem: dict[str, Any] = {}
    if "mem_usage" in cur:
        mem = {"usage": cur["mem_usage"], "stats": cur.get("mem_stats", {}), "limit": limit}
        if cur.get("mem_max"):
            mem["max_usage"] = cur["mem_max"]
    return {
        "read": cur["read"], "preread": prev["read"] if prev else "0001-01-01T00:00:00Z",
        "pids_stats": {"current": cur.get("pids", 0), **({"limit": cur["pids_limit"]} if cur.get("pids_limit") else {})},
        "blkio_stats": {"io_service_bytes_recursive": None, "io_serviced_recursive": None,
                        "io_queue_recursive": None, "io_service_time_recursive": None,
                        "io_wait_time_recursive": None, "io_merged_recursive": None,
                        "io_time_recursive": None, "sectors_recursive": None},
        "num_procs": 0, "storage_stats": {}, "cpu_stats": cpu(cur), "precpu_stats": cpu(prev),
        "memory_stats": mem, "name": "/" + rec.name, "id": rec.id,
        **({"networks": cur["networks"]} if "networks" in cur else {}),
    }
