"""Our mount planning on exactly what the real docker CLI sends for ``-v``/``--mount``/``--tmpfs``.

A tiny fake Engine API on a unix socket (in a temp dir) answers the CLI's ping and records the
body of ``POST /containers/create``; :func:`plan_mounts` then gets that body's HostConfig and
Config.Volumes, as the engine will. The CLI sends ``-v`` specs raw (the daemon validates them),
moves ``-v /dst`` to Config.Volumes, makes ``./rel`` absolute, and turns ``--mount`` into objects.
"""

from __future__ import annotations

import json
import os
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
from dockyard.volumes import spec

DOCKER = shutil.which("docker")
pytestmark = pytest.mark.skipif(DOCKER is None, reason="the docker CLI is not installed")


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    bodies: list[dict[str, Any]]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def address_string(self) -> str:
        return "unix"

    def _reply(self, code: int, body: bytes = b"") -> None:
        self.send_response(code)
        self.send_header("Api-Version", "1.47")
        self.send_header("Ostype", "linux")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self._reply(200)

    def do_GET(self) -> None:  # noqa: N802
        self._reply(200, b"OK")

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if "/containers/create" in self.path:
            self.server.bodies.append(json.loads(body))  # type: ignore[attr-defined]
        self._reply(500, b'{"message": "recorded"}')


@pytest.fixture(scope="module")
def fake_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, _Server, Path]]:
    d = Path(tmp_path_factory.mktemp("volcli"))
    srv = _Server(str(d / "docker.sock"), _Handler)
    srv.bodies = []
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"unix://{d / 'docker.sock'}", srv, d
    srv.shutdown()
    srv.server_close()


def _sent(engine: tuple[str, _Server, Path], *args: str) -> dict[str, Any]:
    host, srv, cwd = engine
    before = len(srv.bodies)
    p = subprocess.run([DOCKER or "docker", "-H", host, "create", *args, "busybox"], capture_output=True,
                       text=True, timeout=30, cwd=cwd, env={"PATH": os.environ.get("PATH", ""), "HOME": str(cwd)})
    assert len(srv.bodies) == before + 1, p.stderr
    return srv.bodies[-1]


def _plan(body: dict[str, Any]) -> list[tuple[Any, ...]] | str:
    try:
        plans = spec.plan_mounts(body["HostConfig"], list((body.get("Volumes") or {}).keys()),
                                 volumes_from=lambda ref: [])
    except InvalidArgument as e:
        return str(e)
    return [(p.type, p.source, p.destination, p.read_only, p.propagation, p.copy_data, p.tmpfs_data)
            for p in plans]


CASES: list[tuple[list[str], Any]] = [
    (["-v", "/data"], [("volume", "", "/data", False, "", True, "")]),
    (["-v", "/tmp:/x:ro,rshared"], [("bind", "/tmp", "/x", True, "rshared", True, "")]),
    (["-v", "vol:/x:nocopy"], [("volume", "vol", "/x", False, "", False, "")]),
    (["-v", "./rel:/x"], "CWD"),
    (["-v", "/a:/b", "-v", "/c:/b"], "Duplicate mount point: /b"),
    (["-v", "/a:/b", "--tmpfs", "/b"], "Duplicate mount point: /b"),
    (["-v", "a:b:c:d"], "invalid volume specification: 'a:b:c:d'"),
    (["-v", "/a:/"], "invalid volume specification: '/a:/': invalid mount config for type \"bind\": "
                     "invalid specification: destination can't be '/'"),
    (["-v", "vol:/x:shared"], "invalid volume specification: 'vol:/x:shared': invalid mount config for type "
                              "\"volume\": field BindOptions must not be specified"),
    (["-v", "/a:/b:bogus"], "invalid mode: bogus"),
    (["--mount", "type=bind,src=/tmp,dst=/x,readonly,bind-propagation=rslave"],
     [("bind", "/tmp", "/x", True, "rslave", True, "")]),
    (["--mount", "type=volume,dst=/v,volume-nocopy,volume-opt=type=tmpfs,volume-label=a=b"],
     [("volume", "", "/v", False, "", False, "")]),
    (["--mount", "type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770"], [("tmpfs", "", "/t", False, "", True, "mode=1770,size=1m")]),
    (["--mount", "type=bind,dst=/x"], 'invalid mount config for type "bind": field Source must not be empty'),
    (["--mount", "type=foo,dst=/x"], 'invalid mount config for type "foo": mount type unknown'),
    (["--mount", "type=bind,src=/nonexistent-dockyard,dst=/x"],
     'invalid mount config for type "bind": bind source path does not exist: /nonexistent-dockyard'),
    (["--tmpfs", "/run:size=1m"], [("tmpfs", "", "/run", False, "", True, "size=1m")]),
    (["--volumes-from", "abc:ro", "-v", "/data"], [("volume", "", "/data", False, "", True, "")]),
]


@pytest.mark.parametrize(("args", "want"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_cli_specs(fake_engine: tuple[str, _Server, Path], args: list[str], want: Any) -> None:
    body = _sent(fake_engine, *args)
    if want == "CWD":  # the CLI resolves ./rel against its working directory
        want = [("bind", f"{fake_engine[2]}/rel", "/x", False, "rprivate", True, "")]
    assert _plan(body) == want
