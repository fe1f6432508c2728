"""docker-compose 1.29 service options against dockyardd, each checked where it lands: inside the
container (files, ids, limits, mounts, signals) and in ``docker inspect``.

One daemon for the module (compose_support.compose_engine). Two projects:

- ``options`` (file format 2.4): ``healthcheck`` + ``depends_on: condition: service_healthy`` and
  ``service_completed_successfully``, env_file/environment, port ranges, expose, tmpfs, ulimits,
  cap_add/cap_drop, mem_limit/cpus, read_only, user, working_dir, labels, logging options,
  restart, init, stop_signal/stop_grace_period, extra_hosts, dns, hostname (a DNS name on the
  network, as dockerd), mac_address, a network with an ipam subnet and a fixed address, aliases,
  volumes_from, relative bind mounts;
- ``netmodes`` (3.8): external network and volume, ``network_mode: service:x|host|none``,
  file-based secrets (bind mounts; compose 1.29 leaves ``configs`` to swarm, against dockerd too).

Each takes its project down and asserts nothing of it is left (external ones are removed by the
test, after checking compose left them alone).
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any

import pytest
from compose_support import (
    assert_project_gone,
    compose,
    compose_engine,
    inspect,
    make_project,
    wait_for,
)

pytestmark = pytest.mark.root
__all__ = ["compose_engine"]  # the fixture, imported for pytest

SUBNET = "192.168.231.0/24"

OPTIONS_FILE = """\
version: "2.4"
services:
  db:
    image: busybox:latest
    command: sh -c 'echo db-data > /dbdata/x; sleep 1; touch /tmp/ready /shared/db-ready; exec sleep 600'
    volumes: ["/dbdata", "./shared:/shared"]
    stop_signal: SIGKILL
    hostname: dbhost
    mac_address: "02:42:c0:a8:e7:63"
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 1s
      timeout: 2s
      retries: 20
    networks:
      back: {{}}
  init:
    image: busybox:latest
    command: sh -c 'sleep 1; echo done > /shared/init'
    volumes: ["./shared:/shared"]
    networks: [back]
  app:
    image: busybox:latest
    command:
      - sh
      - -c
      - 'trap "echo got-usr1 > /shared/stopped; exit 0" USR1; ls /shared > /scratch/seen; sleep 600 & wait'
    depends_on:
      db: {{condition: service_healthy}}
      init: {{condition: service_completed_successfully}}
    env_file: app.env
    environment:
      PLAIN: p1
      SPACED: "a b"
    ports: ["127.0.0.1:{p0}-{p1}:8080-8081", "127.0.0.1::9000/udp"]
    expose: ["7000"]
    tmpfs: ["/scratch:size=1m,mode=1777"]
    ulimits:
      nofile: {{soft: 1024, hard: 2048}}
      nproc: 512
    cap_add: [NET_ADMIN]
    cap_drop: [CHOWN]
    mem_limit: 64m
    cpus: 0.5
    read_only: true
    user: "1000:1000"
    working_dir: /tmp
    labels: {{tier: backend}}
    logging:
      driver: json-file
      options: {{max-size: "1m", max-file: "2"}}
    restart: unless-stopped
    init: true
    stop_signal: SIGUSR1
    stop_grace_period: 5s
    extra_hosts: ["somehost:10.1.2.3"]
    dns: [10.9.9.9]
    volumes: ["./shared:/shared"]
    volumes_from: [db]
    networks:
      back:
        aliases: [theapp]
        ipv4_address: 192.168.231.10
networks:
  back:
    ipam:
      config: [{{subnet: "{subnet}"}}]
"""


def _two_free_ports() -> tuple[int, int]:
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            p = a.getsockname()[1]
            if p >= 65535:
                continue
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", p + 1))
                except OSError:
                    continue
                return p, p + 1
    raise AssertionError("no two consecutive free ports")


def _sh(eng: Any, container: str, script: str) -> str:
    out = eng.docker("exec", container, "sh", "-c", script)
    assert out.returncode == 0, (script, out.stdout, out.stderr)
    return out.stdout.decode()


def test_service_options_land_in_the_container(compose_engine: Any) -> None:
    eng = compose_engine
    p0, p1 = _two_free_ports()
    project = make_project(eng, "options", OPTIONS_FILE.format(p0=p0, p1=p1, subnet=SUBNET))
    (project / "app.env").write_text("# comment\nFROM_FILE=filev\n")
    (project / "shared").mkdir()
    (project / "shared").chmod(0o777)  # app runs as uid 1000
    try:
        up = compose(eng, project, "up", "-d")
        assert up.returncode == 0, up.stderr
        # the conditions held when app started: db healthy (its marker written), init done
        assert _sh(eng, "dyc_app_1", "cat /scratch/seen").split() == ["db-ready", "init"]
        db = inspect(eng, "dyc_db_1")
        assert db["State"]["Health"]["Status"] == "healthy"
        assert db["Config"]["Healthcheck"]["Test"] == ["CMD", "test", "-f", "/tmp/ready"]
        assert db["Config"]["Healthcheck"]["Interval"] == 1_000_000_000
        assert inspect(eng, "dyc_init_1")["State"]["ExitCode"] == 0
        assert "Up (healthy)" in compose(eng, project, "ps").stdout

        app = inspect(eng, "dyc_app_1")
        cfg, hc = app["Config"], app["HostConfig"]
        env = _sh(eng, "dyc_app_1", "env").splitlines()
        assert {"FROM_FILE=filev", "PLAIN=p1", "SPACED=a b"} <= set(env)
        ports = app["NetworkSettings"]["Ports"]
        assert ports["8080/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(p0)}]
        assert ports["8081/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(p1)}]
        assert int(ports["9000/udp"][0]["HostPort"]) > 0
        assert "7000/tcp" in cfg["ExposedPorts"] and ports["7000/tcp"] is None  # exposed, unpublished
        mounts = _sh(eng, "dyc_app_1", "cat /proc/mounts").splitlines()
        scratch = next(m.split() for m in mounts if m.split()[1] == "/scratch")
        assert scratch[2] == "tmpfs" and "size=1024k" in scratch[3]
        assert _sh(eng, "dyc_app_1", "ulimit -n; ulimit -Hn; ulimit -u").split() == ["1024", "2048", "512"]
        capbnd = int(next(ln for ln in _sh(eng, "dyc_app_1", "cat /proc/self/status").splitlines()
                          if ln.startswith("CapBnd:")).split()[1], 16)
        assert capbnd & (1 << 12) and not capbnd & 1  # CAP_NET_ADMIN added, CAP_CHOWN dropped
        limits = _sh(eng, "dyc_app_1", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
                                       "/sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us")
        assert [int(x) for x in limits.split()] == [64 << 20, 50000, 100000]
        assert (hc["Memory"], hc["NanoCpus"], hc["ShmSize"]) == (64 << 20, 500_000_000, 64 << 20)
        assert eng.docker("exec", "dyc_app_1", "touch", "/x").returncode != 0 and hc["ReadonlyRootfs"]
        # docker's user handling: the primary group among the supplementary ones
        assert _sh(eng, "dyc_app_1", "id; pwd").split() == ["uid=1000", "gid=1000", "groups=1000", "/tmp"]
        assert cfg["Labels"]["tier"] == "backend" and cfg["Labels"]["com.docker.compose.service"] == "app"
        assert hc["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}}
        assert hc["RestartPolicy"]["Name"] == "unless-stopped"
        assert hc["Init"] is True
        assert _sh(eng, "dyc_app_1", "cat /proc/1/cmdline").split("\0")[0].endswith("docker-init")
        assert cfg["StopSignal"] == "SIGUSR1"
        # docker-py sends null for what the file leaves out; dockerd's inspect omits/zeroes those
        assert "Healthcheck" not in cfg and "Shell" not in cfg and cfg["Domainname"] == ""
        hosts = _sh(eng, "dyc_app_1", "cat /etc/hosts")
        assert "10.1.2.3\tsomehost" in hosts and "192.168.231.10\t" in hosts
        assert hc["Dns"] == ["10.9.9.9"]
        # the ipam subnet, the fixed address, the alias in DNS
        net = json.loads(eng.docker("network", "inspect", "dyc_back").stdout)[0]
        assert net["IPAM"]["Config"][0]["Subnet"] == SUBNET
        ep = app["NetworkSettings"]["Networks"]["dyc_back"]
        assert ep["IPAddress"] == "192.168.231.10" and "theapp" in ep["Aliases"]
        assert "192.168.231.10" in _sh(eng, "dyc_db_1", "nslookup theapp")
        # hostname: resolvable on the project network; mac_address (the legacy Config.MacAddress)
        db_ip = db["NetworkSettings"]["Networks"]["dyc_back"]["IPAddress"]
        assert db_ip in _sh(eng, "dyc_app_1", "nslookup dbhost") and db["Config"]["Hostname"] == "dbhost"
        assert _sh(eng, "dyc_db_1", "cat /sys/class/net/eth0/address") == "02:42:c0:a8:e7:63\n"
        assert db["NetworkSettings"]["Networks"]["dyc_back"]["MacAddress"] == "02:42:c0:a8:e7:63"
        # volumes_from: db's anonymous volume; the relative bind mount is the project's ./shared
        assert _sh(eng, "dyc_app_1", "cat /dbdata/x") == "db-data\n"
        assert (project / "shared" / "init").read_text() == "done\n"

        # stop: the stop signal goes to the process (through docker-init), which exits cleanly
        stop = compose(eng, project, "stop", "app")
        assert stop.returncode == 0, stop.stderr
        assert (project / "shared" / "stopped").read_text() == "got-usr1\n"
        assert inspect(eng, "dyc_app_1")["State"]["ExitCode"] == 0
    finally:
        down = compose(eng, project, "down", "-v", "-t", "1")
        assert down.returncode == 0, down.stderr
        assert_project_gone(eng)


NETMODES_FILE = """\
version: "3.8"
services:
  main:
    image: busybox:latest
    command: sleep 600
    stop_signal: SIGKILL
    networks: [ext]
    volumes: ["extvol:/ev"]
    secrets: [s1]
  side:
    image: busybox:latest
    command: sleep 600
    stop_signal: SIGKILL
    network_mode: "service:main"
  hostnet:
    image: busybox:latest
    command: sleep 600
    stop_signal: SIGKILL
    network_mode: host
  nonet:
    image: busybox:latest
    command: sleep 600
    stop_signal: SIGKILL
    network_mode: none
networks:
  ext:
    external: true
    name: dyc-ext-net
volumes:
  extvol:
    external: true
    name: dyc-ext-vol
secrets:
  s1:
    file: ./conf/secret.txt
"""


def test_external_resources_network_modes_secrets_and_configs(compose_engine: Any) -> None:
    eng = compose_engine
    project = make_project(eng, "netmodes", NETMODES_FILE)
    (project / "conf").mkdir()
    (project / "conf" / "secret.txt").write_text("secret-value\n")
    try:
        missing = compose(eng, project, "up", "-d")
        assert missing.returncode != 0 and "dyc-ext-net" in missing.stderr
        assert eng.docker("network", "create", "dyc-ext-net").returncode == 0
        assert eng.docker("volume", "create", "dyc-ext-vol").returncode == 0
        up = compose(eng, project, "up", "-d")
        assert up.returncode == 0, up.stderr

        main = inspect(eng, "dyc_main_1")
        assert list(main["NetworkSettings"]["Networks"]) == ["dyc-ext-net"]
        assert any(m["Name"] == "dyc-ext-vol" and m["Destination"] == "/ev" for m in main["Mounts"])
        assert _sh(eng, "dyc_main_1", "cat /run/secrets/s1") == "secret-value\n"
        secret = next(m for m in main["Mounts"] if m["Destination"] == "/run/secrets/s1")
        assert (secret["Type"], secret["Source"], secret["RW"]) == ("bind", str(project / "conf" / "secret.txt"),
                                                                    False)
        # service:main shares main's network namespace: same address, same interfaces
        ip = main["NetworkSettings"]["Networks"]["dyc-ext-net"]["IPAddress"]
        assert f"inet {ip}/" in _sh(eng, "dyc_side_1", "ip -4 addr show eth0")
        assert inspect(eng, "dyc_side_1")["HostConfig"]["NetworkMode"] == f"container:{main['Id']}"
        assert _sh(eng, "dyc_hostnet_1", "readlink /proc/1/ns/net").strip() == os.readlink("/proc/self/ns/net")
        assert [ln.split(":")[1].strip() for ln in _sh(eng, "dyc_nonet_1", "ip -o link").splitlines()] == ["lo"]

        down = compose(eng, project, "down", "-v", "-t", "1")
        assert down.returncode == 0, down.stderr
        assert "dyc-ext-net is external, skipping" in down.stderr
        assert_project_gone(eng)
        # external: compose leaves them to their owner
        assert eng.docker("network", "inspect", "dyc-ext-net").returncode == 0
        assert eng.docker("volume", "inspect", "dyc-ext-vol").returncode == 0
    finally:
        compose(eng, project, "down", "-v", "-t", "1")
        eng.docker("network", "rm", "dyc-ext-net")
        eng.docker("volume", "rm", "dyc-ext-vol")
    wait_for(lambda: eng.docker("network", "inspect", "dyc-ext-net").returncode != 0, "dyc-ext-net to go")
    assert eng.docker("volume", "inspect", "dyc-ext-vol").returncode != 0
