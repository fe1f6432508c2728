from __future__ import annotations

import pytest

from dockyard.daemon import events, filters
from dockyard.errors import InvalidArgument


def info(**kw: object) -> dict:
    base = {"Id": "abc123", "Name": "web", "State": "running", "ExitCode": 0, "Labels": {"app": "x"},
            "ImageID": "sha256:1", "Image": "busybox", "Health": None, "Networks": ["default"]}
    base.update(kw)
    return base


def match(i: dict, f: dict) -> bool:
    return filters.match_container(i, f, lambda r: "sha256:1" if r == "busybox" else None,
                                   lambda r: {"abc123": 2, "old": 1, "new": 3}.get(r))


def test_parse_both_forms() -> None:
    assert filters.parse('{"status":["running"]}') == {"status": ["running"]}
    assert filters.parse('{"label":{"a=b":true}}') == {"label": ["a=b"]}
    with pytest.raises(InvalidArgument):
        filters.parse("{nope")


def test_container_filters() -> None:
    assert match(info(), {"status": ["running", "exited"], "label": ["app=x"], "name": ["we"]})
    assert not match(info(), {"label": ["app=y"]})
    assert match(info(State="exited", ExitCode=3), {"exited": ["3"]})
    assert not match(info(), {"exited": ["0"]})
    assert match(info(), {"ancestor": ["busybox"]}) and match(info(), {"id": ["abc"]})
    assert match(info(), {"since": ["old"], "before": ["new"]})
    assert not match(info(), {"before": ["old"]})
    with pytest.raises(InvalidArgument):
        match(info(), {"status": ["sleepy"]})
    with pytest.raises(InvalidArgument):
        filters.check_keys({"bogus": ["1"]}, filters.CONTAINER_KEYS)


def test_event_filters() -> None:
    bus = events.EventBus()
    q = bus.subscribe()
    bus.emit("container", "start", "abc", {"name": "web", "image": "busybox", "app": "x"})
    ev = q.get_nowait()
    assert ev["status"] == "start" and ev["from"] == "busybox"
    assert events.matches(ev, {"type": ["container"], "event": ["start"], "container": ["web"]})
    assert events.matches(ev, {"label": ["app=x"]}) and not events.matches(ev, {"event": ["die"]})
