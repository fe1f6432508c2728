"""More of docker's surface through the real CLI: policies, health, cp, limits, networks, volumes."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.root


def out(cp: subprocess.CompletedProcess[bytes]) -> str:
    return cp.stdout.decode()


def inspect(engine: Any, name: str, fmt: str) -> str:
    return out(engine.docker("inspect", "-f", fmt, name)).strip()


def wait_for(engine: Any, name: str, fmt: str, want: str, timeout: float = 30.0) -> str:
    """Poll ``docker inspect -f fmt`` until it prints ``want`` (a generous budget: the machine
    may be loaded; the assertion after it is what the test checks)."""
    deadline = time.monotonic() + timeout
    got = inspect(engine, name, fmt)
    while got != want and time.monotonic() < deadline:
        time.sleep(0.1)
        got = inspect(engine, name, fmt)
    return got


def test_restart_policy_and_health(engine: Any) -> None:
    try:
        engine.docker("run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 1")
        wait_for(engine, "flaky", "{{.RestartCount}} {{.State.Status}}", "2 exited")
        assert inspect(engine, "flaky", "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}") == "2 exited 1"
        engine.docker("run", "-d", "--name", "hc", "--health-cmd", "test -f /tmp/ok", "--health-interval", "100ms",
                      "--health-retries", "2", "busybox", "sleep", "60")
        assert wait_for(engine, "hc", "{{.State.Health.Status}}", "unhealthy") == "unhealthy"
        engine.docker("exec", "hc", "touch", "/tmp/ok")
        assert wait_for(engine, "hc", "{{.State.Health.Status}}", "healthy") == "healthy"
        assert "(healthy)" in out(engine.docker("ps", "--filter", "name=hc", "--format", "{{.Status}}"))
    finally:
        engine.docker("rm", "-f", "flaky", "hc")


def test_cp_both_ways_and_contained(engine: Any, tmp_path: Path) -> None:
    engine.docker("run", "-d", "--name", "cpx", "busybox", "sleep", "60")
    try:
        (tmp_path / "in.txt").write_text("into the container\n")
        assert engine.docker("cp", str(tmp_path / "in.txt"), "cpx:/tmp/").returncode == 0
        assert out(engine.docker("exec", "cpx", "cat", "/tmp/in.txt")) == "into the container\n"
        engine.docker("exec", "cpx", "sh", "-c", "echo back > /tmp/out.txt; ln -s / /tmp/root")
        assert engine.docker("cp", "cpx:/tmp/out.txt", str(tmp_path / "out.txt")).returncode == 0
        assert (tmp_path / "out.txt").read_text() == "back\n"
        # a symlink to / inside the container resolves inside the container, not on the host
        engine.docker("cp", "cpx:/tmp/root/etc/passwd", str(tmp_path / "passwd"))
        assert (tmp_path / "passwd").read_text().startswith("root:x:0:0:root:/root:/bin/sh\nnobody")
        missing = engine.docker("cp", "cpx:/nonexistent", str(tmp_path / "x"))
        assert missing.returncode != 0 and b"Could not find the file /nonexistent" in missing.stderr
    finally:
        engine.docker("rm", "-f", "cpx")


def test_security_and_limits(engine: Any) -> None:
    ro = engine.docker("run", "--rm", "--read-only", "busybox", "touch", "/x")
    assert ro.returncode == 1 and b"Read-only file system" in ro.stderr
    caps = out(engine.docker("run", "--rm", "--cap-drop", "ALL", "busybox", "grep", "CapEff", "/proc/self/status"))
    assert caps.split()[-1] == "0000000000000000"
    default_caps = int(out(engine.docker("run", "--rm", "busybox", "grep", "CapEff", "/proc/self/status")).split()[-1], 16)
    assert default_caps & (1 << 21) == 0  # no CAP_SYS_ADMIN by default
    assert out(engine.docker("run", "--rm", "--user", "nobody", "busybox", "id", "-u")) == "65534\n"
    # the default seccomp profile refuses new namespaces and mounts even to root
    denied = engine.docker("run", "--rm", "busybox", "unshare", "-U", "true")
    assert denied.returncode != 0
    assert out(engine.docker("run", "--rm", "--init", "busybox", "ps", "-o", "pid,comm")).split()[3] == "docker-init"
    limited = engine.docker("run", "--rm", "--memory", "32m", "busybox", "sh", "-c",
                            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max")
    assert out(limited).strip() == str(32 << 20)
    assert out(engine.docker("run", "--rm", "-w", "/tmp", "-e", "A=b", "busybox", "sh", "-c", "echo $PWD $A")) == "/tmp b\n"


def test_pause_top_stats_rename_logs(engine: Any) -> None:
    engine.docker("run", "-d", "--name", "ops", "busybox", "sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done; sleep 60")
    try:
        time.sleep(0.3)
        assert engine.docker("pause", "ops").returncode == 0
        assert inspect(engine, "ops", "{{.State.Status}}") == "paused"
        assert engine.docker("unpause", "ops").returncode == 0
        assert "sleep 60" in out(engine.docker("top", "ops"))
        stats = json.loads(out(engine.docker("stats", "--no-stream", "--format", "{{json .}}", "ops")))
        assert stats["Name"] == "ops" and stats["PIDs"] == "1"
        assert engine.docker("create", "--name", "taken", "busybox", "true").returncode == 0
        clash = engine.docker("rename", "ops", "taken")
        assert clash.returncode == 1
        assert b"Error when allocating new name: Conflict. The container name \"/taken\" is already in use" \
            in clash.stderr
        assert engine.docker("rename", "ops", "ops2").returncode == 0
        assert out(engine.docker("logs", "--tail", "2", "ops2")) == "line4\nline5\n"
        stamped = out(engine.docker("logs", "-t", "ops2")).splitlines()[0]
        assert stamped.endswith(" line1") and stamped[4] == "-" and "T" in stamped
    finally:
        engine.docker("rm", "-f", "ops", "ops2", "taken")


def test_publish_and_user_network_dns(engine: Any) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    assert engine.docker("run", "-d", "--name", "pub", "-p", f"127.0.0.1:{port}:8080", "busybox",
                         "sh", "-c", "echo published > /tmp/i; httpd -f -p 8080 -h /tmp").returncode == 0
    assert engine.docker("network", "create", "dytestnet").returncode == 0
    try:
        body = b""
        for _ in range(50):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
                    c.sendall(b"GET /i HTTP/1.0\r\n\r\n")
                    body = c.recv(4096)
                if b"published" in body:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        assert b"published" in body
        engine.docker("run", "-d", "--name", "srv", "--network", "dytestnet", "busybox", "sleep", "60")
        cp = engine.docker("run", "--rm", "--network", "dytestnet", "busybox", "ping", "-c", "1", "-W", "2", "srv")
        assert cp.returncode == 0, cp.stderr
    finally:
        engine.docker("rm", "-f", "pub", "srv")
        engine.docker("network", "rm", "dytestnet")


def test_volumes(engine: Any, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("from host\n")
    assert out(engine.docker("run", "--rm", "-v", f"{tmp_path}:/data:ro", "busybox", "cat", "/data/f")) == "from host\n"
    engine.docker("volume", "create", "dytestvol")
    try:
        engine.docker("run", "--rm", "-v", "dytestvol:/v", "busybox", "sh", "-c", "echo kept > /v/x")
        assert out(engine.docker("run", "--rm", "-v", "dytestvol:/v", "busybox", "cat", "/v/x")) == "kept\n"
        before = set(out(engine.docker("volume", "ls", "-q")).split())
        engine.docker("run", "--rm", "-v", "/anon", "busybox", "true")
        assert set(out(engine.docker("volume", "ls", "-q")).split()) == before  # --rm removed it
    finally:
        engine.docker("volume", "rm", "dytestvol")


def test_attach_after_daemon_kill9(engine: Any) -> None:
    engine.docker("run", "-d", "-i", "--name", "att", "busybox", "sh", "-c", "while read l; do echo got $l; done")
    try:
        engine.kill9_and_restart()
        p = subprocess.Popen(["docker", "attach", "att"], env=engine.env(), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert p.stdin is not None and p.stdout is not None
        time.sleep(0.5)
        p.stdin.write(b"hello\n")
        p.stdin.flush()
        assert p.stdout.readline() == b"got hello\n"
        p.kill()
        p.wait()
    finally:
        engine.docker("rm", "-f", "att")


def test_events_stream(engine: Any) -> None:
    since = str(int(time.time()) - 1)
    engine.docker("run", "--rm", "--name", "evt", "busybox", "true")
    cp = engine.docker("events", "--since", since, "--until", str(int(time.time()) + 1), "--filter",
                       "container=evt", "--format", "{{.Action}}")
    actions = out(cp).split()
    assert actions[:1] == ["create"] and "start" in actions and "die" in actions and actions[-1] == "destroy"


def test_detach_keys_leave_the_container_running(engine: Any) -> None:
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn("docker", ["run", "-it", "--name", "detachme", "busybox", "sh"], env=engine.env(),
                          timeout=20)
    try:
        child.expect(r"# ")
        child.send("\x10\x11")  # ctrl-p ctrl-q
        child.expect(pexpect.EOF)
    finally:
        child.close()
    try:
        assert inspect(engine, "detachme", "{{.State.Status}}") == "running"
        # piped stdin: EOF closes the container's stdin (StdinOnce), so cat ends
        assert out(engine.docker("run", "--rm", "-i", "busybox", "cat", input=b"x" * 70000)) == "x" * 70000
    finally:
        engine.docker("rm", "-f", "detachme")


def test_update_running_container(engine: Any) -> None:
    engine.docker("run", "-d", "--name", "upd", "--memory", "100m", "busybox", "sleep", "60")
    try:
        cp = engine.docker("update", "--memory", "50m", "--memory-swap", "100m", "--pids-limit", "7", "upd")
        assert cp.returncode == 0, cp.stderr
        got = out(engine.docker("exec", "upd", "sh", "-c",
                                "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max"))
        assert got.split() == [str(50 << 20), "7"]
        assert inspect(engine, "upd", "{{.HostConfig.Memory}}") == str(50 << 20)
    finally:
        engine.docker("rm", "-f", "upd")


def test_rmi_refuses_an_image_in_use(engine: Any) -> None:
    engine.docker("create", "--name", "user1", "busybox", "true")
    try:
        cp = engine.docker("rmi", "busybox")
        assert cp.returncode == 1 and b'unable to remove repository reference "busybox" (must force)' in cp.stderr
        assert b"busybox" in engine.docker("images").stdout
    finally:
        engine.docker("rm", "user1")


def test_restart_policy_across_daemon_kill9(engine: Any) -> None:
    engine.docker("run", "-d", "--name", "always", "--restart", "always", "busybox", "sh", "-c", "sleep 0.5; exit 1")
    try:
        engine.proc.kill()
        engine.proc.wait()
        time.sleep(1.0)  # the container exits while no daemon runs
        engine.kill9_and_restart()
        for _ in range(100):
            if inspect(engine, "always", "{{.RestartCount}}") not in ("", "0"):
                break
            time.sleep(0.05)
        assert int(inspect(engine, "always", "{{.RestartCount}}")) >= 1
    finally:
        engine.docker("rm", "-f", "always")


def test_monitor_killed_containers_marked_exited(engine: Any) -> None:
    cp = engine.docker("run", "-d", "--name", "orphan", "busybox", "sleep", "300")
    assert cp.returncode == 0
    pid = int(inspect(engine, "orphan", "{{.State.Pid}}"))
    mon = engine.monitor_request({"op": "ping"})["pid"]
    import os
    import signal as sig
    os.kill(mon, sig.SIGKILL)  # the monitor dies: the container lost its stdio and reaper
    engine.kill9_and_restart()  # a new daemon starts a new monitor, which kills the orphan
    for _ in range(100):
        if inspect(engine, "orphan", "{{.State.Status}}") == "exited":
            break
        time.sleep(0.05)
    assert inspect(engine, "orphan", "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"
    assert not os.path.exists(f"/proc/{pid}") or "zombie" in open(f"/proc/{pid}/status").read().lower()
    assert engine.docker("rm", "orphan").returncode == 0
    assert out(engine.docker("run", "--rm", "busybox", "echo", "fine")) == "fine\n"
