"""`dockyard` verbs against a private dockyardd, compared with the real docker CLI's output.

Time-dependent columns (CREATED, STATUS) can tick between the two invocations, so those
comparisons retry a few times; everything else must match byte for byte.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.root
DOCKYARD = str(Path(sys.executable).parent / "dockyard")


def dy(engine: Any, *args: str, input: bytes | None = None, env: dict[str, str] | None = None,
       timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([DOCKYARD, "-H", engine.host, *args], input=input, capture_output=True,
                          timeout=timeout, env=env)


def same(engine: Any, *args: str) -> None:
    """dockyard and docker print the same on stdout, with the same exit code."""
    for _ in range(5):
        a, b = dy(engine, *args), engine.docker(*args)
        ours = a.stdout
        if (ours, a.returncode) == (b.stdout, b.returncode):
            return
        time.sleep(0.3)
    import difflib
    delta = "\n".join(difflib.unified_diff(ours.decode().splitlines(), b.stdout.decode().splitlines(),
                                           "dockyard", "docker", lineterm="", n=1))
    assert (ours, a.returncode) == (b.stdout, b.returncode), f"{args}: rc {a.returncode}/{b.returncode}\n{delta}"


@pytest.fixture(scope="module")
def running(engine: Any) -> Iterator[Any]:
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]  # a free port, so parallel engines never collide
    s.close()
    started = dy(engine, "run", "-d", "--name", "vweb", "-p", f"127.0.0.1:{port}:80", "-l", "tier=web",
                 "busybox", "sh", "-c", "echo hello; echo oops >&2; sleep 300")
    assert started.returncode == 0, started.stderr
    assert dy(engine, "create", "--name", "vstopped", "busybox", "true").returncode == 0
    try:
        yield engine
    finally:
        dy(engine, "rm", "-f", "vweb", "vstopped")


@pytest.mark.parametrize("args", [
    ["ps"], ["ps", "-a"], ["ps", "-a", "--no-trunc"], ["ps", "-q"], ["ps", "-aq"],
    ["ps", "--format", "json"], ["ps", "-a", "--format", "table {{.ID}}\\t{{.Names}}\\t{{.Ports}}\\t{{.State}}"],
    ["ps", "--format", "{{.Names}} {{.Label \"tier\"}} {{.Labels}}"], ["ps", "-a", "-f", "status=created"],
    ["ps", "-f", "label=tier=web", "--format", "{{.Names}}"], ["container", "ls", "-a"],
    ["images"], ["images", "-q"], ["images", "--digests"], ["images", "--no-trunc"], ["images", "--format", "json"],
    ["image", "ls", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"], ["history", "busybox"],
    ["history", "--no-trunc", "-q", "busybox"], ["port", "vweb"], ["port", "vweb", "80"],
    ["inspect", "vweb"], ["inspect", "--format", "{{.State.Status}} {{.Config.Image}} {{json .Config.Cmd}}", "vweb"],
    ["container", "inspect", "vweb"], ["image", "inspect", "busybox"], ["inspect", "nosuch"],
    ["network", "ls"], ["network", "inspect", "bridge", "--format", "{{.Name}} {{.Driver}}"], ["volume", "ls"],
    ["system", "df"], ["logs", "vweb"], ["diff", "vweb"], ["top", "vweb"], ["rm", "nosuch"], ["stop", "nosuch"],
    ["ps", "--nosuchflag"], ["rm"], ["info", "--format", "{{.Containers}} {{.Driver}}"],
])
def test_same_output_as_docker(running: Any, args: list[str]) -> None:
    same(running, *args)


def test_stderr_and_exit_codes(running: Any) -> None:
    logs = dy(running, "logs", "vweb")
    assert (logs.stdout, logs.stderr) == (b"hello\n", b"oops\n")
    bad = dy(running, "ps", "--nosuchflag")
    assert bad.returncode == 125 and b"unknown flag: --nosuchflag" in bad.stderr
    missing = dy(running, "run", "--rm", "busybox", "/nope")
    assert missing.returncode == 127
    assert dy(running, "run", "--rm", "busybox", "sh", "-c", "exit 7").returncode == 7
    assert dy(running, "run", "--rm", "--pull", "never", "no/such:image", "true").returncode == 125
    assert dy(running, "exec", "vweb", "sh", "-c", "exit 9").returncode == 9
    nonet = dy(running, "run", "--rm", "--network", "nosuchnet", "busybox", "true")
    assert nonet.returncode == 125 and b"nosuchnet" in nonet.stderr
    assert b"Unable to find image" not in nonet.stderr  # the image is there: no pull attempt
    notty = dy(running, "run", "-it", "--rm", "busybox", "true", input=b"")
    assert notty.returncode == 1 and b"the input device is not a TTY" in notty.stderr


def test_lifecycle_verbs(running: Any) -> None:
    e = running
    assert dy(e, "pause", "vweb").stdout == b"vweb\n"
    assert b"(Paused)" in dy(e, "ps", "--format", "{{.Status}}", "-f", "name=vweb").stdout
    assert dy(e, "unpause", "vweb").returncode == 0
    assert dy(e, "update", "--memory", "64m", "vweb").returncode == 0
    assert dy(e, "inspect", "-f", "{{.HostConfig.Memory}}", "vweb").stdout == b"67108864\n"
    assert dy(e, "rename", "vstopped", "vstopped2").returncode == 0
    assert dy(e, "rename", "vstopped2", "vstopped").returncode == 0
    assert dy(e, "restart", "-t", "1", "vweb").returncode == 0
    assert dy(e, "inspect", "-f", "{{.State.Running}} {{.RestartCount}}", "vweb").stdout.startswith(b"true")
    stats = dy(e, "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}}", "vweb")
    assert stats.returncode == 0 and stats.stdout.startswith(b"vweb ") and b" / 64MiB " in stats.stdout
    table = dy(e, "stats", "--no-stream", "vweb").stdout.decode().splitlines()
    assert table[0].split() == ["CONTAINER", "ID", "NAME", "CPU", "%", "MEM", "USAGE", "/", "LIMIT", "MEM", "%",
                                "NET", "I/O", "BLOCK", "I/O", "PIDS"]


def test_cp_commit_export_save_load_tag(running: Any, tmp_path: Path) -> None:
    e = running
    (tmp_path / "in.txt").write_text("payload\n")
    assert dy(e, "cp", str(tmp_path / "in.txt"), "vweb:/tmp/").returncode == 0
    assert dy(e, "exec", "vweb", "cat", "/tmp/in.txt").stdout == b"payload\n"
    assert dy(e, "cp", "vweb:/tmp/in.txt", str(tmp_path / "out.txt")).returncode == 0
    assert (tmp_path / "out.txt").read_text() == "payload\n"
    assert dy(e, "cp", "vweb:/etc", str(tmp_path / "etc")).returncode == 0
    assert (tmp_path / "etc" / "hostname").exists()
    assert b"A /tmp/in.txt" in dy(e, "diff", "vweb").stdout or b"C /tmp" in dy(e, "diff", "vweb").stdout
    cid = dy(e, "commit", "-c", 'CMD ["cat", "/tmp/in.txt"]', "vweb", "vcommitted:1").stdout.strip()
    assert cid.startswith(b"sha256:")
    try:
        assert dy(e, "run", "--rm", "vcommitted:1").stdout == b"payload\n"
        assert dy(e, "tag", "vcommitted:1", "vcommitted:2").returncode == 0
        assert dy(e, "save", "-o", str(tmp_path / "img.tar"), "vcommitted:2").returncode == 0
        with tarfile.open(tmp_path / "img.tar") as tf:
            assert "manifest.json" in tf.getnames()
        assert dy(e, "rmi", "vcommitted:1", "vcommitted:2").returncode == 0
        loaded = dy(e, "load", "-i", str(tmp_path / "img.tar"))
        assert loaded.returncode == 0 and b"Loaded image: vcommitted:2" in loaded.stdout
        exported = dy(e, "export", "vweb")
        with tarfile.open(fileobj=__import__("io").BytesIO(exported.stdout)) as tf:
            assert "tmp/in.txt" in [n.lstrip("./") for n in tf.getnames()]
    finally:
        dy(e, "rmi", "-f", "vcommitted:1", "vcommitted:2")


def test_prune_and_events(engine: Any) -> None:
    since = str(time.time() - 1)
    assert dy(engine, "create", "--name", "vprune", "busybox", "true").returncode == 0
    out = dy(engine, "container", "prune", "-f")
    assert out.returncode == 0 and b"Deleted Containers:" in out.stdout and b"Total reclaimed space" in out.stdout
    assert dy(engine, "inspect", "vprune").returncode == 1
    ev = dy(engine, "events", "--since", since, "--until", str(time.time() + 0.5),
            "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
    assert b"container create vprune" in ev.stdout and b"container destroy vprune" in ev.stdout
    plain = dy(engine, "events", "--since", since, "--until", "0s").stdout.decode().splitlines()
    assert any(" container create " in line and "name=vprune" in line for line in plain), plain
    assert dy(engine, "system", "prune", "-f").returncode == 0
    assert dy(engine, "volume", "create", "vprunevol").returncode == 0
    assert b"vprunevol" in dy(engine, "volume", "prune", "-a", "-f").stdout


def test_login_logout_write_docker_config(engine: Any, tmp_path: Path) -> None:
    """Against our own registry with htpasswd: the config.json format docker writes."""
    import socket
    bcrypt = pytest.importorskip("bcrypt")
    (tmp_path / "htpasswd").write_text("alice:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode() + "\n")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    reg = subprocess.Popen([DOCKYARD, "registry", "serve", "--addr", f"127.0.0.1:{port}", "--root",
                            str(tmp_path / "reg"), "--htpasswd", str(tmp_path / "htpasswd")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        env = {**os.environ, "DOCKER_CONFIG": str(tmp_path / "cfg")}
        bad = dy(engine, "login", "-u", "alice", "--password-stdin", f"127.0.0.1:{port}", input=b"wrong\n", env=env)
        assert bad.returncode == 1 and not (tmp_path / "cfg" / "config.json").exists()
        ok = dy(engine, "login", "-u", "alice", "--password-stdin", f"127.0.0.1:{port}", input=b"s3cret\n", env=env)
        assert ok.returncode == 0 and ok.stdout == b"Login Succeeded\n", ok.stderr
        cfg = json.loads((tmp_path / "cfg" / "config.json").read_text())
        assert cfg["auths"][f"127.0.0.1:{port}"]["auth"] == "YWxpY2U6czNjcmV0"  # base64("alice:s3cret")
        assert (tmp_path / "cfg" / "config.json").stat().st_mode & 0o777 == 0o600
        assert dy(engine, "tag", "busybox", f"127.0.0.1:{port}/team/bb:1").returncode == 0
        pushed = dy(engine, "push", f"127.0.0.1:{port}/team/bb:1", env=env)
        assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        out = dy(engine, "logout", f"127.0.0.1:{port}", env=env)
        assert out.stdout == f"Removing login credentials for 127.0.0.1:{port}\n".encode()
        assert json.loads((tmp_path / "cfg" / "config.json").read_text())["auths"] == {}
        denied = dy(engine, "push", f"127.0.0.1:{port}/team/bb:1", env=env)
        assert denied.returncode != 0
        dy(engine, "rmi", f"127.0.0.1:{port}/team/bb:1")
        pulled = dy(engine, "pull", f"127.0.0.1:{port}/team/bb:1", env=env)
        assert pulled.returncode != 0  # anonymous pull of a protected repo is refused
    finally:
        reg.terminate()
        reg.wait(10)
        dy(engine, "rmi", f"127.0.0.1:{port}/team/bb:1")


def test_interactive_tty(running: Any) -> None:
    pexpect = pytest.importorskip("pexpect")
    e = running
    p = pexpect.spawn(DOCKYARD, ["-H", e.host, "run", "-it", "--rm", "busybox", "sh"], dimensions=(30, 100),
                      timeout=20)
    try:
        p.expect(r"[#$] ")
        p.sendline("stty size; echo $((6*7))")
        p.expect("30 100")
        p.expect("42")
        p.setwinsize(40, 120)  # SIGWINCH -> resize
        p.sendline("sleep 0.2; stty size")
        p.expect("40 120")
        p.sendline("exit 5")
        p.expect(pexpect.EOF)
    finally:
        p.close(force=True)
    assert p.exitstatus == 5
    p = pexpect.spawn(DOCKYARD, ["-H", e.host, "run", "-it", "--name", "vdetach", "busybox", "sh"], timeout=20)
    try:
        p.expect(r"[#$] ")
        p.send("\x10\x11")  # ctrl-p ctrl-q: detach, the container keeps running
        p.expect(pexpect.EOF)
    finally:
        p.close(force=True)
    try:
        assert p.exitstatus == 0
        assert dy(e, "inspect", "-f", "{{.State.Running}}", "vdetach").stdout == b"true\n"
        p = pexpect.spawn(DOCKYARD, ["-H", e.host, "exec", "-it", "vdetach", "sh"], timeout=20)
        p.expect(r"[#$] ")
        p.sendline("tty; exit 3")
        p.expect("/dev/pts")
        p.expect(pexpect.EOF)
        p.close(force=True)
        assert p.exitstatus == 3
        p = pexpect.spawn(DOCKYARD, ["-H", e.host, "attach", "vdetach"], timeout=20)
        time.sleep(0.5)
        p.sendline("echo attached-$((1+1))")
        p.expect("attached-2")
        p.sendline("exit 4")
        p.expect(pexpect.EOF)
        p.close(force=True)
        assert p.exitstatus == 4
    finally:
        dy(e, "rm", "-f", "vdetach")
