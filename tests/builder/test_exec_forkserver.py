"""The pre-forked runtime helper: runs dockyard-runtime's main as the program would."""

from __future__ import annotations

import os
import time

import pytest

from dockyard.builder.forkserver import ForkServer


@pytest.fixture
def fs():
    f = ForkServer()
    yield f
    f.close()


def _out(run) -> bytes:  # type: ignore[no-untyped-def]
    assert run.stdout is not None
    with run.stdout:
        return run.stdout.read()


def test_runs_the_runtime_cli_with_its_output_and_status(fs: ForkServer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with open(os.devnull, "rb") as null:
        ok = fs.spawn(["--version"], str(tmp_path), stdin=null.fileno())
        assert ok.pid > 0 and ok.pid != os.getpid()
        assert b"dockyard-runtime version" in _out(ok) and ok.wait() == 0
        bad = fs.spawn(["--root", str(tmp_path / "st"), "state", "nosuch"], str(tmp_path), stdin=null.fileno())
        text = _out(bad)
        assert bad.wait() == 1 and b"does not exist" in text


def test_a_dead_helper_is_replaced_and_close_ends_it(fs: ForkServer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with open(os.devnull, "rb") as null:
        assert fs.spawn(["--version"], str(tmp_path), stdin=null.fileno()).wait() == 0
        first = fs._proc
        assert first is not None
        first.kill()  # the helper this test started
        first.wait()
        again = fs.spawn(["--version"], str(tmp_path), stdin=null.fileno())
        assert again.wait() == 0 and fs._proc is not None and fs._proc.pid != first.pid
    proc = fs._proc
    fs.close()
    assert proc is not None and proc.poll() is not None


def test_a_killed_child_reports_137(fs: ForkServer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # the runtime appends its error to --log: a FIFO nobody reads blocks it there for good
    fifo = tmp_path / "log"
    os.mkfifo(fifo)
    with open(os.devnull, "rb") as null:
        child = fs.spawn(["--log", str(fifo), "--root", str(tmp_path / "st"), "state", "x"], str(tmp_path),
                         stdin=null.fileno())
    with pytest.raises(TimeoutError):
        child.wait(0.3)
    child.kill()
    assert child.wait(10) == 137
    for _ in range(100):  # the helper's children are reaped by the kernel: no zombie stays
        try:
            os.kill(child.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.02)
    else:
        pytest.fail("the killed child is still there")
