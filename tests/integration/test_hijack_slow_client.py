"""A client slow to read the 101 head of a hijacked exec still gets all of the output.

docker-py (and docker-compose on top of it) parses the 101 through a buffered reader and then
reads the raw socket: output that reached the socket together with the head is lost. A loaded
host can delay such a client well past 100 ms (compose's ``exec -T`` lost its output in CI that
way); the daemon holds the first output back until the head has been read (api/hijack.py)."""

from __future__ import annotations

import json
import socket
import time

import pytest

pytestmark = pytest.mark.root


def _request(sock_path: str, method: str, path: str, body: dict, upgrade: bool = False) -> socket.socket:
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    data = json.dumps(body).encode()
    head = [f"{method} {path} HTTP/1.1", "Host: docker", "Content-Type: application/json",
            f"Content-Length: {len(data)}"]
    if upgrade:
        head += ["Connection: Upgrade", "Upgrade: tcp"]
    else:
        head += ["Connection: close"]
    s.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + data)
    return s


def _read_all(s: socket.socket) -> bytes:
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    return out


def test_output_waits_for_a_slow_reader_of_the_101_head(engine) -> None:  # type: ignore[no-untyped-def]
    run = engine.docker("run", "-d", "busybox", "sleep", "1000")
    assert run.returncode == 0, run.stderr
    cid = run.stdout.decode().strip()
    try:
        with _request(engine.sock, "POST", f"/v1.50/containers/{cid}/exec",
                      {"Cmd": ["echo", "hello-slow-reader"], "AttachStdout": True, "AttachStderr": True}) as s:
            resp = _read_all(s)
        exec_id = json.loads(resp.split(b"\r\n\r\n", 1)[1])["Id"]
        with _request(engine.sock, "POST", f"/v1.50/exec/{exec_id}/start", {"Detach": False, "Tty": False},
                      upgrade=True) as s:
            time.sleep(0.5)  # a client descheduled on a loaded host
            first = s.recv(65536)
            assert first.startswith(b"HTTP/1.1 101"), first
            assert first.endswith(b"\r\n\r\n") and b"hello-slow-reader" not in first, first
            s.settimeout(30)
            rest = _read_all(s)
        assert b"hello-slow-reader\n" in rest, rest
    finally:
        engine.docker("rm", "-f", cid)
