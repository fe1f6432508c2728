"""`dockyard pull/push` draw a progress stream byte for byte as docker CLI 28 does.

A small HTTP server on a unix socket answers every POST with a recorded stream (data/: what
dockerd 20.10 sent for a pull of a 5-layer image, one of them already there, 1 "Waiting";
a push; a push whose layers were mounted); both CLIs run against it on a pseudo-terminal
(160 columns: docker draws bars above 110) and on a pipe, and their outputs must be equal.
"""

from __future__ import annotations

import fcntl
import http.server
import os
import pty
import select
import shutil
import socketserver
import struct
import subprocess
import sys
import termios
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

DATA = Path(__file__).with_name("data")
DOCKER = shutil.which("docker")
DOCKYARD = str(Path(sys.executable).with_name("dockyard"))

pytestmark = pytest.mark.skipif(DOCKER is None, reason="no docker CLI")


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    body = b""

    def get_request(self) -> tuple[object, tuple[str, int]]:
        conn, _ = super().get_request()
        return conn, ("local", 0)  # BaseHTTPRequestHandler wants a (host, port)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args: object) -> None:
        return None

    def _send(self, data: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Api-Version", "1.41")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_HEAD(self) -> None:
        self._send(b"")

    def do_GET(self) -> None:
        self._send(b"OK" if "_ping" in self.path else b"{}")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._send(self.server.body)


@pytest.fixture
def replay(tmp_path: Path) -> Iterator[_Server]:
    srv = _Server(str(tmp_path / "r.sock"), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        t.join()


def _env(srv: _Server, tmp_path: Path) -> dict[str, str]:
    (tmp_path / "cfg").mkdir(exist_ok=True)
    return {**os.environ, "DOCKER_HOST": f"unix://{srv.server_address}", "DOCKER_CONFIG": str(tmp_path / "cfg")}


def _on_tty(cmd: list[str], env: dict[str, str]) -> tuple[int, bytes]:
    """Run ``cmd`` with stdout and stderr on a 160x40 pseudo-terminal; what it wrote there."""
    master, slave = pty.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
        attrs = termios.tcgetattr(slave)
        attrs[1] &= ~termios.OPOST  # raw output: no "\n" -> "\r\n", the bytes as written
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env)
        os.close(slave)
        slave = -1
        out = b""
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                p.kill()
                p.wait()
                raise AssertionError(f"{cmd} wrote nothing for 60 s: {out!r}")
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not chunk:
                break
            out += chunk
        return p.wait(), out
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)


def _both(srv: _Server, tmp_path: Path, *args: str) -> None:
    assert DOCKER is not None
    env = _env(srv, tmp_path)
    theirs, ours = _on_tty([DOCKER, *args], env), _on_tty([DOCKYARD, *args], env)
    assert ours == theirs
    theirs_p = subprocess.run([DOCKER, *args], env=env, capture_output=True, timeout=60)
    ours_p = subprocess.run([DOCKYARD, *args], env=env, capture_output=True, timeout=60)
    assert (ours_p.returncode, ours_p.stdout, ours_p.stderr) == (theirs_p.returncode, theirs_p.stdout, theirs_p.stderr)


@pytest.mark.parametrize("args", [("pull", "127.0.0.1:5599/five:v1"), ("pull", "127.0.0.1:5599/five"),
                                  ("pull", "-q", "127.0.0.1:5599/five:v1")])
def test_pull_stream_drawn_as_docker_does(replay: _Server, tmp_path: Path, args: tuple[str, ...]) -> None:
    replay.body = (DATA / "dockerd20-pull.jsonl").read_bytes()
    _both(replay, tmp_path, *args)


@pytest.mark.parametrize(("data", "args"), [
    ("dockerd20-push.jsonl", ("push", "127.0.0.1:5598/p:v1")),
    ("dockerd20-push-mounted.jsonl", ("push", "127.0.0.1:5598/p2")),
    ("dockerd20-push.jsonl", ("push", "-q", "127.0.0.1:5598/p")),
    ("dockerd20-push.jsonl", ("push", "-q", "-a", "127.0.0.1:5598/p")),
])
def test_push_stream_drawn_as_docker_does(replay: _Server, tmp_path: Path, data: str, args: tuple[str, ...]) -> None:
    replay.body = (DATA / data).read_bytes()
    _both(replay, tmp_path, *args)


def test_an_error_ends_the_display_as_docker(replay: _Server, tmp_path: Path) -> None:
    lines = (DATA / "dockerd20-pull.jsonl").read_bytes().splitlines(keepends=True)
    err = b'{"errorDetail":{"message":"boom: it failed"},"error":"boom: it failed"}\n'
    replay.body = b"".join([*lines[:8], err, *lines[-3:]])  # what follows an error is not shown
    _both(replay, tmp_path, "pull", "127.0.0.1:5599/five:v1")
