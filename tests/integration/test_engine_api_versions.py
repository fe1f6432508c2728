"""Versioned paths against a private dockyardd: what an old client (docker-compose 1.29 speaks
1.25-1.38, the SDK whatever ``version=`` says) sees, and how a version is negotiated."""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any

import pytest

pytestmark = pytest.mark.root


def get(engine: Any, path: str) -> tuple[int, dict[str, str], Any]:
    class Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(engine.sock)

    c = Conn("d")
    try:
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        try:
            return r.status, dict(r.getheaders()), json.loads(body)
        except ValueError:
            return r.status, dict(r.getheaders()), body  # /_ping answers "OK"
    finally:
        c.close()


def test_image_shapes_follow_the_version(engine: Any) -> None:
    _, _, old = get(engine, "/v1.30/images/busybox/json")
    assert old["VirtualSize"] == old["Size"] and "ContainerConfig" in old and old["Container"] == ""
    _, _, new = get(engine, "/v1.50/images/busybox/json")
    assert "VirtualSize" not in new and "ContainerConfig" not in new
    _, _, unversioned = get(engine, "/images/busybox/json")  # no prefix: the newest shape
    assert "VirtualSize" not in unversioned
    _, _, lst = get(engine, "/v1.41/images/json")
    assert all(i["VirtualSize"] == i["Size"] for i in lst)
    _, _, lst = get(engine, "/v1.44/images/json")
    assert all("VirtualSize" not in i for i in lst)


def test_negotiation_headers_and_bounds(engine: Any) -> None:
    for path in ("/_ping", "/v1.24/version", "/v1.50/version"):
        status, headers, _ = get(engine, path)
        # the server always announces its own newest version; clients downgrade to it
        assert status == 200 and headers["Api-Version"] == "1.50", path
    _, _, v = get(engine, "/v1.24/version")
    assert v["ApiVersion"] == "1.50" and v["MinAPIVersion"] == "1.24"
    status, _, body = get(engine, "/v1.23/version")
    assert status == 400 and "too old" in body["message"] and "1.24" in body["message"]
    status, _, body = get(engine, "/v1.51/version")
    assert status == 400 and "too new" in body["message"]


def test_docker_cli_with_an_old_api_version(engine: Any) -> None:
    env = {**engine.env(), "DOCKER_API_VERSION": "1.30"}
    import subprocess
    cp = subprocess.run(["docker", "run", "--rm", "busybox", "echo", "old"], env=env, capture_output=True,
                        timeout=60)
    assert (cp.returncode, cp.stdout) == (0, b"old\n"), cp.stderr
    cp = subprocess.run(["docker", "image", "inspect", "-f", "{{.VirtualSize}}", "busybox"], env=env,
                        capture_output=True, timeout=60)
    assert cp.returncode == 0 and int(cp.stdout) > 0, cp.stderr


def test_sdk_pinned_to_an_old_version(engine: Any) -> None:
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=engine.host, version="1.35")
    try:
        assert client.api.api_version == "1.35"
        img = client.images.get("busybox")
        assert "ContainerConfig" in img.attrs
        assert client.containers.run("busybox", "echo v", remove=True) == b"v\n"
    finally:
        client.close()
    auto = docker.DockerClient(base_url=engine.host, version="auto")
    try:
        assert auto.api.api_version == "1.50"
    finally:
        auto.close()
