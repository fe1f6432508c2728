"""docker-compose (Debian's 1.29, a docker-py client of the Engine API) against dockyardd.

A three-service project: ``web`` (busybox httpd published on 127.0.0.1), ``client`` (fetches
from ``web`` by its service name over the project network and stores the page in a named
volume) and ``writer`` (writes to the same named volume). ``up -d`` must bring it up and make it
work; ``down -v`` must leave no container, network, volume, bridge, veth or nft rule behind.
Compose creates each container, then disconnects and reconnects it to its network with the
service aliases before starting it: the path a stopped container's network config takes.
"""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest
from compose_support import Engine, compose_engine, free_port, links, nft_ruleset, wait_for
from compose_support import compose as _compose_p

pytestmark = pytest.mark.root
__all__ = ["compose_engine"]  # the fixture, imported for pytest

COMPOSE_FILE = """\
version: "3.8"
services:
  web:
    image: busybox:latest
    command: httpd -f -p 80 -h /var/www
    ports: ["127.0.0.1:{port}:80"]
    networks: [appnet]
  writer:
    image: busybox:latest
    command: sh -c 'echo stored > /data/out && exec sleep 600'
    volumes: ["appdata:/data"]
    networks: [appnet]
  client:
    image: busybox:latest
    command: sh -c 'while :; do printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 3 web 80 > /tmp/p && grep -q compose-ok /tmp/p && cp /tmp/p /data/fetched; sleep 0.2; done'
    volumes: ["appdata:/data"]
    networks:
      appnet:
        aliases: [fetcher]
    depends_on: [web]
networks:
  appnet:
    labels: {{purpose: compose-test}}
volumes:
  appdata: {{}}
"""


def _compose(eng: Engine, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _compose_p(eng, project, *args)


def test_compose_up_works_and_down_removes_everything(compose_engine: Engine) -> None:
    eng = compose_engine
    port = free_port()
    project = eng.root / "project"
    project.mkdir()
    (project / "docker-compose.yml").write_text(COMPOSE_FILE.format(port=port))
    instance = eng.args[eng.args.index("--network-instance") + 1]
    table = f"dockyard_{instance}"
    try:
        up = _compose(eng, project, "up", "-d")
        assert up.returncode == 0, up.stderr

        ps = _compose(eng, project, "ps")
        assert ps.returncode == 0, ps.stderr
        assert ps.stdout.count(" Up ") == 3, ps.stdout

        # web on the published port
        def web_answers() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    return b"compose-ok" in r.read()
            except OSError:
                return False
        wait_for(web_answers, f"web on 127.0.0.1:{port}")

        # client reached "web" by service name and wrote to the shared named volume
        def fetched() -> bool:
            out = eng.docker("exec", "dyc_writer_1", "cat", "/data/out", "/data/fetched")
            return out.returncode == 0 and b"stored" in out.stdout and b"compose-ok" in out.stdout
        wait_for(fetched, "client's fetch from web stored in the volume")

        # the network compose made: labelled, three endpoints, aliases from the file
        net = json.loads(eng.docker("network", "inspect", "dyc_appnet").stdout)[0]
        assert net["Labels"]["purpose"] == "compose-test"
        assert net["Labels"]["com.docker.compose.network"] == "appnet"
        assert len(net["Containers"]) == 3
        client = json.loads(eng.docker("inspect", "dyc_client_1").stdout)[0]
        aliases = client["NetworkSettings"]["Networks"]["dyc_appnet"]["Aliases"]
        assert "fetcher" in aliases and "client" in aliases
        nslookup = eng.docker("exec", "dyc_writer_1", "nslookup", "fetcher")
        assert client["NetworkSettings"]["Networks"]["dyc_appnet"]["IPAddress"] in nslookup.stdout.decode()

        bridges = {n for n in links() if n.startswith(f"dy{instance}-") and n != f"dy{instance}-default"}
        assert len(bridges) == 1, bridges
        veths = {n for n in links() if n.startswith(f"dy{instance}v")}
        assert len(veths) == 3, veths
        assert str(port) in nft_ruleset(table)

        down = _compose(eng, project, "down", "-v", "-t", "1")
        assert down.returncode == 0, down.stderr
        assert eng.docker("ps", "-aq").stdout.strip() == b""
        assert b"dyc_appnet" not in eng.docker("network", "ls").stdout
        assert b"dyc_appdata" not in eng.docker("volume", "ls", "-q").stdout
        assert not (bridges & links()), "the project network's bridge is still there"
        wait_for(lambda: not any(n.startswith(f"dy{instance}v") for n in links()), "veths to go")
        rules = nft_ruleset(table)
        assert str(port) not in rules and next(iter(bridges)) not in rules, rules
        with socket.socket() as s:  # the host port is free again
            s.bind(("127.0.0.1", port))
    finally:
        _compose(eng, project, "down", "-v", "-t", "1")


def test_compose_rerun_and_stopped_service_keeps_its_network(compose_engine: Engine) -> None:
    """``stop`` then ``start`` (the same containers) and ``up -d`` again (nothing to recreate)."""
    eng = compose_engine
    port = free_port()
    project = eng.root / "project2"
    project.mkdir()
    (project / "docker-compose.yml").write_text(COMPOSE_FILE.format(port=port))
    try:
        assert _compose(eng, project, "up", "-d").returncode == 0
        stop = _compose(eng, project, "stop", "-t", "1")
        assert stop.returncode == 0, stop.stderr
        stopped = json.loads(eng.docker("inspect", "dyc_client_1").stdout)[0]
        assert "dyc_appnet" in stopped["NetworkSettings"]["Networks"]
        assert "fetcher" in stopped["NetworkSettings"]["Networks"]["dyc_appnet"]["Aliases"]
        start = _compose(eng, project, "start")
        assert start.returncode == 0, start.stderr
        again = _compose(eng, project, "up", "-d")
        assert again.returncode == 0, again.stderr
        assert "up-to-date" in again.stderr, again.stderr
        nslookup = eng.docker("exec", "dyc_writer_1", "nslookup", "fetcher")
        assert nslookup.returncode == 0, nslookup.stdout + nslookup.stderr
    finally:
        down = _compose(eng, project, "down", "-v", "-t", "1")
        assert down.returncode == 0, down.stderr
        assert eng.docker("ps", "-aq").stdout.strip() == b""
