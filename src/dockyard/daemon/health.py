"""Health checks (``Config.Healthcheck``): a probe exec'd in the container every interval.

State lives in the record as Docker's ``State.Health``: ``{"Status": "starting"|"healthy"|
"unhealthy", "FailingStreak": n, "Log": [last 5 probes]}``. A probe that exits 0 is healthy;
non-zero or longer than ``Timeout`` counts as a failure; ``Retries`` consecutive failures make
the container unhealthy. Failures inside ``StartPeriod`` don't count. One asyncio task per
running container; it ends when the container stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from dockyard.daemon.record import ContainerRecord, now_rfc3339
from dockyard.shim import protocol

NS = 1_000_000_000
DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
MAX_LOG = 5
MAX_OUTPUT = 4096


def probe_cmd(hc: dict[str, Any] | None) -> list[str] | None:
    test = list((hc or {}).get("Test") or [])
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD":
        return test[1:] or None
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(test[1:])]
    return test


class HealthMonitor:
    def __init__(self, svc: Any) -> None:
        self.svc = svc
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, rec: ContainerRecord) -> None:
        cmd = probe_cmd(rec.config.get("Healthcheck"))
        if cmd is None:
            return
        self.stop(rec.id)
        rec.state.health = {"Status": "starting", "FailingStreak": 0, "Log": []}
        self.tasks[rec.id] = asyncio.ensure_future(self._loop(rec, cmd))

    def stop(self, cid: str) -> None:
        task = self.tasks.pop(cid, None)
        if task is not None:
            task.cancel()

    async def _loop(self, rec: ContainerRecord, cmd: list[str]) -> None:
        hc = rec.config.get("Healthcheck") or {}
        interval = (hc.get("Interval") or 0) / NS or DEFAULT_INTERVAL
        timeout = (hc.get("Timeout") or 0) / NS or DEFAULT_TIMEOUT
        retries = hc.get("Retries") or DEFAULT_RETRIES
        start_period = (hc.get("StartPeriod") or 0) / NS
        start_interval = (hc.get("StartInterval") or 0) / NS or interval
        loop = asyncio.get_running_loop()
        began = loop.time()
        while True:
            in_start = loop.time() - began < start_period
            await asyncio.sleep(start_interval if in_start and rec.state.health and
                                rec.state.health["Status"] == "starting" else interval)
            started = now_rfc3339()
            code, output = await self._probe(rec, cmd, timeout)
            health = rec.state.health or {"Status": "starting", "FailingStreak": 0, "Log": []}
            health["Log"] = (health["Log"] + [{"Start": started, "End": now_rfc3339(), "ExitCode": code,
                                               "Output": output}])[-MAX_LOG:]
            old = health["Status"]
            if code == 0:
                health["Status"] = "healthy"
                health["FailingStreak"] = 0
            elif not (loop.time() - began < start_period):
                health["FailingStreak"] += 1
                if health["FailingStreak"] >= retries:
                    health["Status"] = "unhealthy"
            rec.state.health = health
            self.svc.store.save(rec)
            if health["Status"] != old:
                self.svc.events.emit("container", f"health_status: {health['Status']}", rec.id,
                                     self.svc._attrs(rec))

    async def _probe(self, rec: ContainerRecord, cmd: list[str], timeout: float) -> tuple[int, str]:
        try:
            eid = self.svc.exec_create(rec.id, {"Cmd": cmd, "AttachStdout": True, "AttachStderr": True})
            conn = await self.svc.exec_open(eid, False, False)
        except Exception as e:  # noqa: BLE001 - a probe that can't start is a failed probe
            return -1, str(e)
        assert conn is not None
        reader, writer = conn
        buf = bytearray()
        out = bytearray()
        code = -1
        try:
            async with asyncio.timeout(timeout):
                while chunk := await reader.read(65536):
                    buf += chunk
                    for stream, payload in protocol.parse_frames(buf):
                        if stream == protocol.EXIT_STREAM:
                            code = int(json.loads(payload)["exit_code"])
                        elif len(out) < MAX_OUTPUT:
                            out += payload
        except TimeoutError:
            with contextlib.suppress(Exception):
                await self.svc.monitor.request({"op": "kill", "id": eid, "signal": 9})
            return -1, f"Health check exceeded timeout ({timeout:g}s)"
        finally:
            writer.close()
            self.svc.execs.pop(eid, None)
            with contextlib.suppress(ValueError):
                rec.exec_ids.remove(eid)
        return code, out.decode("utf-8", "replace")[:MAX_OUTPUT]
