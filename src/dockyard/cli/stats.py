"""``dockyard stats``: docker's resource table, once (``--no-stream``) or redrawn each second.

CPU % is docker's: (container CPU delta / system CPU delta) x online CPUs x 100 between the
stats' ``precpu_stats`` and ``cpu_stats``; memory excludes the page cache (inactive_file).
"""

from __future__ import annotations

import json
import sys

from dockyard.cli.common import Globals, bytes_size, human_size, short_id

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
HEADERS = {"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME", "CPUPerc": "CPU %",
           "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O",
           "PIDs": "PIDS"}


class StatsRow:
    def __init__(self, container: str, s: dict[str, Any], trunc: bool) -> None:
        self.Container, self.s, self.trunc = container, s, trunc

    @property
    def ID(self) -> str:
        i = self.s.get("id", "")
        return short_id(i) if self.trunc else i

    @property
    def Name(self) -> str:
        return (self.s.get("name") or "").lstrip("/") or "--"

    @property
    def CPUPerc(self) -> str:
        cpu, pre = self.s.get("cpu_stats") or {}, self.s.get("precpu_stats") or {}
        d_cpu = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (pre.get("cpu_usage") or {}).get("total_usage", 0)
        d_sys = (cpu.get("system_cpu_usage") or 0) - (pre.get("system_cpu_usage") or 0)
        online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
        pct = d_cpu / d_sys * online * 100.0 if d_sys > 0 and d_cpu > 0 else 0.0
        return f"{pct:.2f}%"

    def _mem(self) -> tuple[float, float]:
        m = self.s.get("memory_stats") or {}
        st = m.get("stats") or {}
        usage = m.get("usage") or 0
        cache = st.get("total_inactive_file", st.get("inactive_file", 0)) or 0
        if cache < usage:
            usage -= cache
        return usage, m.get("limit") or 0

    @property
    def MemUsage(self) -> str:
        used, limit = self._mem()
        return f"{bytes_size(used)} / {bytes_size(limit)}"

    @property
    def MemPerc(self) -> str:
        used, limit = self._mem()
        return f"{used / limit * 100:.2f}%" if limit else "0.00%"

    @property
    def NetIO(self) -> str:
        rx = sum(n.get("rx_bytes", 0) for n in (self.s.get("networks") or {}).values())
        tx = sum(n.get("tx_bytes", 0) for n in (self.s.get("networks") or {}).values())
        return f"{human_size(rx, 3)} / {human_size(tx, 3)}"

    @property
    def BlockIO(self) -> str:
        rd = wr = 0
        for e in (self.s.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
            op = (e.get("op") or "").lower()
            if op == "read":
                rd += e.get("value", 0)
            elif op == "write":
                wr += e.get("value", 0)
        return f"{human_size(rd, 3)} / {human_size(wr, 3)}"

    @property
    def PIDs(self) -> str:
        return str((self.s.get("pids_stats") or {}).get("current", 0))

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("BlockIO", "CPUPerc", "Container", "ID", "MemPerc", "MemUsage",
                                              "Name", "NetIO", "PIDs")}


def _sample(g: Globals, names: list[str], trunc: bool) -> list[StatsRow]:
    from dockyard import errors
    rows = []
    for n in names:
        try:
            s = json.loads(g.client.request("GET", f"/containers/{n}/stats", {"stream": False}).read())
        except errors.NotFound:
            continue
        rows.append(StatsRow(n, s, trunc))
    return rows


def show(g: Globals, names: list[str], *, all_: bool, stream: bool, fmt: str | None, trunc: bool) -> int:
    from dockyard.cli.template import render_rows
    explicit = bool(names)
    if explicit:  # docker checks every named container up front: a missing one is an error
        for n in names:
            g.client.json("GET", f"/containers/{n}/json")
    try:
        while True:
            if not explicit:
                names = [c["Id"] for c in g.client.json("GET", "/containers/json", {"all": all_ or None})]
            text = render_rows(fmt, _sample(g, names, trunc), DEFAULT, HEADERS)
            if not stream:
                sys.stdout.write(text)
                return 0
            sys.stdout.write("\x1b[2J\x1b[H" + text)
            sys.stdout.flush()
            import time
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0
