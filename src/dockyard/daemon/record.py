"""The container record: everything the daemon knows about one container, persisted as JSON.

On disk (``<data-root>/containers/<id>/``)::

    config.v2.json      this record (temp file + os.replace on every change)
    hostname hosts resolv.conf   bind-mounted into the container
    <id>-json.log       json-file log (written by the monitor)

A daemon killed at any point restarts with a consistent store: every write is atomic, and
records of containers whose process died meanwhile are reconciled with the monitor's records.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dockyard.atomicfile import write_atomic
from dockyard.daemon.state import Status, check_transition

ZERO_TIME = "0001-01-01T00:00:00Z"


def now_rfc3339() -> str:
    ns = time.time_ns()
    secs, nanos = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{nanos:09d}Z"


@dataclass
class RunState:
    status: Status = Status.CREATED
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME
    oom_killed: bool = False
    health: dict[str, Any] | None = None


@dataclass
class ContainerRecord:
    id: str
    name: str  # without the leading "/"
    created: str
    image: str  # as the user gave it
    image_id: str
    config: dict[str, Any]  # Docker "Config" after merging the image's
    host_config: dict[str, Any]
    path: str
    args: list[str]
    runtime: str
    state: RunState = field(default_factory=RunState)
    restart_count: int = 0
    manually_stopped: bool = False
    has_been_started: bool = False
    exec_ids: list[str] = field(default_factory=list)
    network_settings: dict[str, Any] = field(default_factory=dict)
    mounts: list[dict[str, Any]] = field(default_factory=list)  # volumes.model.MountPlan JSON

    @property
    def status(self) -> Status:
        return self.state.status

    def move(self, new: Status) -> None:
        check_transition(self.state.status, new)
        self.state.status = new

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["state"]["status"] = self.state.status.value
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ContainerRecord:
        st = dict(d.pop("state"))
        st["status"] = Status(st["status"])
        return cls(state=RunState(**st), **d)


class RecordStore:
    """Per-container directories under ``<data-root>/containers``."""

    def __init__(self, root: Path) -> None:
        self.root = root / "containers"
        self.root.mkdir(parents=True, exist_ok=True)

    def dir(self, cid: str) -> Path:
        return self.root / cid

    def save(self, rec: ContainerRecord) -> None:
        d = self.dir(rec.id)
        d.mkdir(exist_ok=True)
        write_atomic(d / "config.v2.json", json.dumps(rec.to_json()).encode())

    def load_all(self) -> list[ContainerRecord]:
        """Every record; at daemon start only. Also sweeps what a killed daemon left: the
        directory of a create that died before its first save, and temp files of saves."""
        out = []
        for d in self.root.iterdir():
            if not d.is_dir():
                continue
            f = d / "config.v2.json"
            for tmp in d.glob(".config.v2.json.*"):
                tmp.unlink(missing_ok=True)
            try:
                out.append(ContainerRecord.from_json(json.loads(f.read_text())))
            except FileNotFoundError:
                # a create that died before its first save: nothing to keep (nothing was ever
                # mounted below it: mounts come with a start, which needs the record)
                if not _has_mounts_below(d):
                    shutil.rmtree(d, ignore_errors=True)
            except (ValueError, TypeError, KeyError):
                continue
        return out


def _has_mounts_below(d: Path) -> bool:
    prefix = str(d) + "/"
    try:
        with open("/proc/self/mountinfo") as f:
            return any(ln.split()[4].startswith(prefix) for ln in f)
    except OSError:
        return True
