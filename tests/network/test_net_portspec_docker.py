"""Our -p parser against the real docker CLI's (it parses client-side), spec by spec.

A tiny fake Engine API on a unix socket answers the CLI's ping and records the body of
``POST /containers/create``; the CLI's PortBindings/ExposedPorts there, or its own error text
for a bad spec, are the oracle. Nothing leaves the machine: the socket lives in a temp dir.
"""

from __future__ import annotations

import json
import random
import shutil
import socketserver
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from dockyard.errors import InvalidArgument
from dockyard.network.portspec import parse_port_spec

DOCKER = shutil.which("docker")
pytestmark = pytest.mark.skipif(DOCKER is None, reason="the docker CLI is not installed")


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    bodies: list[dict[str, Any]]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, code: int, body: bytes = b"") -> None:
        self.send_response(code)
        self.send_header("Api-Version", "1.47")
        self.send_header("Ostype", "linux")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def address_string(self) -> str:
        return "unix"

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self._reply(200)

    def do_GET(self) -> None:  # noqa: N802
        self._reply(200, b"OK")

    def do_POST(self) -> None:  # noqa: N802
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        if "/containers/create" in self.path:
            self.server.bodies.append(json.loads(body))  # type: ignore[attr-defined]
        self._reply(500, b'{"message": "recorded"}')


@pytest.fixture(scope="module")
def fake_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, _Server]]:
    sock = Path(tmp_path_factory.mktemp("engine")) / "docker.sock"
    srv = _Server(str(sock), _Handler)
    srv.bodies = []
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"unix://{sock}", srv
    srv.shutdown()
    srv.server_close()


def docker_parse(host: str, srv: _Server, spec: str) -> tuple[str, Any]:
    """("error", message) or ("ok", (PortBindings, ExposedPorts)) as the CLI sees ``spec``."""
    before = len(srv.bodies)
    p = subprocess.run([DOCKER or "docker", "-H", host, "create", "-p", spec, "busybox"],
                       capture_output=True, text=True, timeout=20)
    if len(srv.bodies) > before:
        body = srv.bodies[-1]
        return "ok", (body["HostConfig"].get("PortBindings") or {}, body.get("ExposedPorts") or {})
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("docker: ")]
    assert lines, p.stderr
    return "error", lines[0][len("docker: "):]


def ours(spec: str) -> tuple[str, Any]:
    try:
        bindings = parse_port_spec(spec)
    except InvalidArgument as e:
        return "error", str(e)
    pb: dict[str, list[dict[str, str]]] = {}
    for b in bindings:
        pb.setdefault(b.key, []).append({"HostIp": b.host_ip, "HostPort": b.host_port_text()})
    return "ok", (pb, {b.key: {} for b in bindings})


FIXED = [
    "80", "8080:80", "8080:80/udp", "80/UDP", "80/", "127.0.0.1:8080:80", "127.0.0.1::80",
    "[::1]:8080:80", "8000-8001:80-81", "8000-8010:80", "80-81", "9/sctp", "0.0.0.0:80:80/tcp",
    "", "8080:", "abc", "70000", "x:80", "70000:80", "-1:80", "1.2.3:80:80", "8000-8001:80-83",
    "90-80", "80/foo", ":80", "::80", "1.2.3.4::", "80-", "-80", "8080-:80", "65535:65535",
    "0:80", "80:0", "1-2-3", "[::1]::80/udp", "[1.2.3.4]:80:80", "a:b:c:d", "80/tcp/udp",
    "[fe80::1%eth0]:80:80", "01.2.3.4:80:80", "::ffff:1.2.3.4:80:80", "+80", "8080:+80", " 80", "0-5:80",
]


def _random_specs(n: int) -> list[str]:
    rnd = random.Random(1234)
    atoms = ["80", "8080", "0", "65535", "65536", "1-3", "3-1", "", "x", "-", "/", ":", "udp",
             "tcp", "sctp", "127.0.0.1", "[::1]", "::", "1.2.3"]
    specs = []
    for _ in range(n):
        k = rnd.randint(1, 4)
        specs.append("".join(rnd.choice(atoms + [":", "/", "-"]) for _ in range(k)))
    return specs


@pytest.mark.parametrize("spec", FIXED + _random_specs(80))
def test_same_as_docker_cli(fake_engine: tuple[str, _Server], spec: str) -> None:
    host, srv = fake_engine
    assert ours(spec) == docker_parse(host, srv, spec)
