from __future__ import annotations

from dockyard import errors
from dockyard.api.status import status_of
from dockyard.daemon.monitor_client import RuntimeFailure


def test_one_mapping() -> None:
    assert status_of(errors.NotFound("x")) == 404
    assert status_of(errors.Conflict("x")) == 409 and status_of(errors.AlreadyExists("x")) == 409
    assert status_of(errors.InvalidArgument("x")) == 400 and status_of(errors.NotModified("x")) == 304
    assert status_of(errors.NotImplementedYet("x")) == 501 and status_of(errors.Unavailable("x")) == 503
    assert status_of(RuntimeFailure("x")) == 500 and status_of(ValueError("x")) == 500
