"""``--network|--pid container:<x>`` through the real docker CLI (the compose sidecar pattern,
``network_mode: service:x``): the joiner reaches the donor's services on 127.0.0.1, shares its
hostname and /etc files, has no endpoint of its own, and keeps the namespace (loopback only)
when the donor stops."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import pytest

pytestmark = pytest.mark.root


def out(cp: subprocess.CompletedProcess[bytes]) -> str:
    assert cp.returncode == 0, cp.stderr.decode()
    return cp.stdout.decode()


def test_sidecar_shares_the_donor_network(engine: Any) -> None:
    try:
        donor = out(engine.docker("run", "-d", "--name", "nsweb", "busybox", "httpd", "-f", "-p", "8080",
                                  "-h", "/etc")).strip()
        # B reaches A's server on loopback, and sees A's hostname
        got = out(engine.docker("run", "--rm", "--network", "container:nsweb", "busybox",
                                "wget", "-qO-", "127.0.0.1:8080/hostname"))
        assert got == donor[:12] + "\n"
        out(engine.docker("run", "-d", "--name", "nsside", "--network", "container:nsweb", "busybox",
                          "sleep", "60"))
        fmt = "{{.HostConfig.NetworkMode}}|{{json .NetworkSettings.Networks}}|{{.Config.Hostname}}|{{.HostsPath}}"
        mode, nets, hostname, hosts = out(engine.docker("inspect", "-f", fmt, "nsside")).strip().split("|")
        assert mode == f"container:{donor}" and nets == "{}" and hostname == donor[:12]
        assert hosts == out(engine.docker("inspect", "-f", "{{.HostsPath}}", "nsweb")).strip()
        assert out(engine.docker("exec", "nsside", "hostname")) == donor[:12] + "\n"
        ip = out(engine.docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "nsweb")).strip()
        assert ip and f"{ip}\t" in out(engine.docker("exec", "nsside", "cat", "/etc/hosts"))
        # chained: C joins B, which is in A's namespace
        out(engine.docker("run", "-d", "--name", "nschain", "--network", "container:nsside", "busybox",
                          "sleep", "60"))
        assert out(engine.docker("exec", "nschain", "wget", "-qO-", "127.0.0.1:8080/hostname")) == donor[:12] + "\n"
        # a shared namespace can't be connected elsewhere
        conn = engine.docker("network", "connect", "bridge", "nsside")
        assert conn.returncode != 0 and b"sharing network namespace" in conn.stderr
        # the donor stops: the joiners keep the namespace, without the donor's interface
        out(engine.docker("stop", "-t", "0", "nsweb"))
        addrs = out(engine.docker("exec", "nsside", "ip", "-o", "-4", "addr"))
        assert "127.0.0.1" in addrs and ip not in addrs
        # joining a stopped donor is a 409 naming it
        late = engine.docker("run", "--rm", "--network", "container:nsweb", "busybox", "true")
        assert late.returncode != 0
        assert b"cannot join network namespace of a non running container: container nsweb is exited" in late.stderr
    finally:
        engine.docker("rm", "-f", "nsweb", "nsside", "nschain")


@pytest.mark.parametrize("opts,msg", [
    (["--hostname", "x"], "conflicting options: hostname and the network mode"),
    (["--dns", "1.1.1.1"], "conflicting options: dns and the network mode"),
    (["--add-host", "a:1.2.3.4"], "conflicting options: custom host-to-IP mapping and the network mode"),
    (["-p", "80"], "conflicting options: port publishing and the container type network mode"),
    (["--expose", "80"], "conflicting options: port exposing and the container type network mode"),
    (["--mac-address", "02:42:ac:11:00:09"], "conflicting options: mac-address and the network mode"),
])
def test_container_mode_conflicts(engine: Any, opts: list[str], msg: str) -> None:
    cp = engine.docker("create", "--name", "nsbad", "--network", "container:whatever", *opts, "busybox", "true")
    try:
        assert cp.returncode != 0 and msg in cp.stderr.decode()
        assert engine.docker("inspect", "nsbad").returncode != 0  # nothing was created
    finally:
        engine.docker("rm", "-f", "nsbad")


def test_missing_donor_fails_the_start_not_the_create(engine: Any) -> None:
    try:
        out(engine.docker("create", "--name", "nsorphan", "--network", "container:nsnope", "busybox", "true"))
        st = engine.docker("start", "nsorphan")
        assert st.returncode != 0 and b"No such container: nsnope" in st.stderr
    finally:
        engine.docker("rm", "-f", "nsorphan")


def test_pid_container_and_host(engine: Any) -> None:
    try:
        out(engine.docker("run", "-d", "--name", "nspid", "busybox", "sleep", "60"))
        ps = out(engine.docker("run", "--rm", "--pid", "container:nspid", "busybox", "ps", "-o", "pid,args"))
        assert "1 sleep 60" in " ".join(ps.split())
        host_pidns = os.readlink("/proc/self/ns/pid")
        assert out(engine.docker("run", "--rm", "--pid", "host", "busybox", "readlink", "/proc/self/ns/pid")).strip() == host_pidns
        assert out(engine.docker("inspect", "-f", "{{.HostConfig.IpcMode}}", "nspid")).strip() == "private"
    finally:
        engine.docker("rm", "-f", "nspid")


def test_ipc_shareable_and_container(engine: Any) -> None:
    try:
        out(engine.docker("run", "-d", "--name", "nsipc", "--ipc", "shareable", "--shm-size", "16m", "busybox",
                          "sh", "-c", "echo secret > /dev/shm/x; sleep 60"))
        got = out(engine.docker("run", "--rm", "--ipc", "container:nsipc", "busybox", "sh", "-c",
                                "cat /dev/shm/x; readlink /proc/self/ns/ipc")).split()
        assert got[0] == "secret"
        assert got[1] == out(engine.docker("exec", "nsipc", "readlink", "/proc/self/ns/ipc")).strip()
        out(engine.docker("run", "-d", "--name", "nsipcp", "busybox", "sleep", "60"))
        private = engine.docker("run", "--rm", "--ipc", "container:nsipcp", "busybox", "true")
        assert private.returncode != 0 and b"non-shareable IPC" in private.stderr
        assert engine.docker("run", "--rm", "--ipc", "none", "busybox", "ls", "/dev/shm").returncode != 0
    finally:
        engine.docker("rm", "-f", "nsipc", "nsipcp")
    with open("/proc/mounts") as f:
        assert f"{engine.root}" not in "".join(line for line in f if "mounts/shm" in line)
