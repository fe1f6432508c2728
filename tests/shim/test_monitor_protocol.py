from __future__ import annotations

import json
from pathlib import Path

from dockyard.shim import protocol, runner
from dockyard.shim.logfile import JsonLog


def test_frames_round_trip_and_partial() -> None:
    data = protocol.frame(1, b"hello") + protocol.frame(2, b"err") + protocol.frame(1, b"par")
    buf = bytearray(data[:-2])
    assert protocol.parse_frames(buf) == [(1, b"hello"), (2, b"err")]
    buf += data[-2:]
    assert protocol.parse_frames(buf) == [(1, b"par")] and buf == bytearray()
    assert protocol.frame(1, b"x")[:8] == b"\x01\x00\x00\x00\x00\x00\x00\x01"  # Docker's header


def test_json_log_lines_and_rotation(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    log = JsonLog(str(path))
    log.write("stdout", b"one\ntw")
    log.write("stdout", b"o\n")
    log.write("stderr", b"partial")
    log.close()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [(x["log"], x["stream"]) for x in lines] == [("one\n", "stdout"), ("two\n", "stdout"),
                                                        ("partial", "stderr")]
    path.unlink()
    log = JsonLog(str(path), max_size=200, max_file=2)
    for i in range(20):
        log.write("stdout", f"line {i}\n".encode())
    log.close()
    assert (tmp_path / "c-json.log.1").exists() and not (tmp_path / "c-json.log.2").exists()
    assert path.stat().st_size <= 200
    path.unlink()
    (tmp_path / "c-json.log.1").unlink()
    log = JsonLog(str(path), max_size=300, max_file=3)
    log.write("stdout", b"".join(f"burst {i}\n".encode() for i in range(40)))  # one big read
    log.close()
    assert (tmp_path / "c-json.log.2").exists() and path.stat().st_size <= 300


def test_runtime_error_from_json_log(tmp_path: Path) -> None:
    log = tmp_path / "runtime.log"
    log.write_text('{"level":"info","msg":"x"}\n{"level":"error","msg":"exec: \\"nope\\": not found"}\n')
    assert runner.last_error(str(log)) == 'exec: "nope": not found'
    assert runner.last_error(str(log), since=log.stat().st_size) == ""
    assert runner.create_args("id", "/b", "/b/p", None) == ["create", "--bundle", "/b", "--pid-file", "/b/p", "id"]
