from __future__ import annotations

import pytest

from dockyard.daemon.record import ContainerRecord, RunState
from dockyard.daemon.state import ALLOWED, Status, check_transition
from dockyard.errors import Conflict


def test_every_status_has_transitions() -> None:
    assert set(ALLOWED) == set(Status)


@pytest.mark.parametrize(("old", "new"), [(Status.CREATED, Status.RUNNING), (Status.RUNNING, Status.EXITED),
                                          (Status.EXITED, Status.RUNNING), (Status.RUNNING, Status.PAUSED),
                                          (Status.PAUSED, Status.RUNNING)])
def test_legal_moves(old: Status, new: Status) -> None:
    check_transition(old, new)


@pytest.mark.parametrize(("old", "new"), [(Status.CREATED, Status.PAUSED), (Status.EXITED, Status.PAUSED),
                                          (Status.DEAD, Status.RUNNING)])
def test_illegal_moves(old: Status, new: Status) -> None:
    with pytest.raises(Conflict):
        check_transition(old, new)


def test_record_round_trip() -> None:
    rec = ContainerRecord(id="a" * 64, name="web", created="2026-01-01T00:00:00.000000000Z", image="busybox",
                          image_id="sha256:" + "b" * 64, config={"Cmd": ["sh"]}, host_config={}, path="sh",
                          args=[], runtime="runc", state=RunState(status=Status.RUNNING, pid=42))
    again = ContainerRecord.from_json(rec.to_json())
    assert again == rec and again.status is Status.RUNNING
    again.move(Status.EXITED)
    with pytest.raises(Conflict):
        again.move(Status.PAUSED)
