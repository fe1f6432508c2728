"""The runtime's CLI lifecycle against real containers (root), with runc's errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest
from runtime_fixtures import Runtime, bundle_fixture, cgroup_dirs_for, rt_fixture  # noqa: F401 - pytest fixtures

pytestmark = pytest.mark.root


def wait_status(rt: Runtime, cid: str, want: str) -> str:
    st = ""
    for _ in range(200):
        st = rt.state(cid)["status"]
        if st == want:
            break
        time.sleep(0.02)
    return st


def test_spec_writes_runc_default(tmp_path):
    from runtime_fixtures import RUNTIME

    p = subprocess.run([RUNTIME, "spec"], cwd=tmp_path, capture_output=True)
    assert p.returncode == 0, p.stderr
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["process"]["terminal"] is True
    assert cfg["process"]["args"] == ["sh"]
    assert cfg["root"] == {"path": "rootfs", "readonly": True}
    assert {"type": "pid"} in cfg["linux"]["namespaces"]
    again = subprocess.run([RUNTIME, "spec"], cwd=tmp_path, capture_output=True)
    assert again.returncode == 1 and b"exists" in again.stderr


def test_run_pid1_hostname_exit_status(rt, bundle):
    bundle.write(args=["/bin/sh", "-c", "echo pid=$$ host=$(hostname); exit 7"])
    p = rt("run", "-b", str(bundle.path), "c1")
    assert p.returncode == 7, p.stderr
    assert p.stdout.decode().strip() == "pid=1 host=runc"
    # run deletes the container when it exits
    assert rt("list", "-q").stdout == b""
    assert cgroup_dirs_for("c1") == []


def test_create_start_state_kill_delete(rt, bundle):
    bundle.write(args=["/bin/sleep", "30"])
    assert rt("create", "-b", str(bundle.path), "c2").returncode == 0
    st = rt.state("c2")
    assert st["status"] == "created" and st["pid"] > 0
    assert st["bundle"] == str(bundle.path) and st["id"] == "c2"
    assert set(st) >= {"ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner"}
    # the user process is not running yet: the init is still our Python, not sleep
    with open(f"/proc/{st['pid']}/cmdline", "rb") as f:
        assert b"sleep" not in f.read()
    dup = rt("create", "-b", str(bundle.path), "c2")
    assert dup.returncode == 1 and b"container with given ID already exists" in dup.stderr
    assert rt("start", "c2").returncode == 0
    assert rt.state("c2")["status"] == "running"
    with open(f"/proc/{st['pid']}/cmdline", "rb") as f:
        assert f.read().startswith(b"/bin/sleep")
    again = rt("start", "c2")
    assert again.returncode == 1 and b"cannot start an already running container" in again.stderr
    busy = rt("delete", "c2")
    assert busy.returncode == 1 and b"that is not stopped: running" in busy.stderr
    assert rt("kill", "c2", "KILL").returncode == 0
    assert wait_status(rt, "c2", "stopped") == "stopped"
    assert rt.state("c2")["pid"] == 0
    k = rt("kill", "c2")
    assert k.returncode == 1 and b"container not running" in k.stderr
    s = rt("start", "c2")
    assert s.returncode == 1 and b"cannot start a container that has stopped" in s.stderr
    assert rt("delete", "c2").returncode == 0
    assert not (rt.root / "c2").exists()
    assert cgroup_dirs_for("c2") == []
    gone = rt("state", "c2")
    assert gone.returncode == 1 and b"container does not exist" in gone.stderr


def test_delete_created_and_force_running(rt, bundle):
    bundle.write(args=["/bin/sleep", "30"])
    rt("create", "-b", str(bundle.path), "c3", check=True)
    pid = rt.state("c3")["pid"]
    assert rt("delete", "c3").returncode == 0  # like runc: a created container is killed
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    rt("run", "-d", "-b", str(bundle.path), "c4", check=True)
    assert rt.state("c4")["status"] == "running"
    assert rt("delete", "-f", "c4").returncode == 0
    assert cgroup_dirs_for("c4") == [] and rt("list", "-q").stdout == b""


def test_unknown_id_and_usage_errors(rt):
    for args in (("state", "nope"), ("start", "nope"), ("kill", "nope"), ("delete", "nope")):
        p = rt(*args)
        assert p.returncode == 1 and b"container does not exist" in p.stderr, args
    p = rt("create")
    assert p.returncode == 1 and b"requires exactly 1 argument" in p.stderr
    p = rt("kill", "x", "NOSUCHSIG")
    assert p.returncode == 1


def test_missing_executable_fails_create_and_leaves_nothing(rt, bundle):
    bundle.write(args=["nosuchcmd"])
    p = rt("create", "-b", str(bundle.path), "c5")
    assert p.returncode == 1
    assert b'exec: \\"nosuchcmd\\": executable file not found in $PATH' in p.stderr
    assert not (rt.root / "c5").exists() and cgroup_dirs_for("c5") == []
    bundle.write(args=["/no/such"])
    p = rt("run", "-b", str(bundle.path), "c5")
    assert p.returncode == 1 and b"stat /no/such: no such file or directory" in p.stderr
    bundle.write(args=["/etc/passwd"])
    p = rt("create", "-b", str(bundle.path), "c5")
    assert p.returncode == 1 and b'exec: \\"/etc/passwd\\": permission denied' in p.stderr
    assert not (rt.root / "c5").exists() and cgroup_dirs_for("c5") == []


@pytest.mark.skipif(shutil.which("runc") is None, reason="runc not installed")
def test_missing_executable_message_matches_runc(tmp_path, bundle):
    bundle.write(args=["nosuchcmd"])
    runc = subprocess.run(["runc", "--root", str(tmp_path / "runc"), "create", "-b",
                           str(bundle.path), "r1"], capture_output=True)
    ours = Runtime(tmp_path / "ours")("create", "-b", str(bundle.path), "r1")
    want = 'exec: \\"nosuchcmd\\": executable file not found in $PATH'
    assert want.encode() in runc.stderr and want.encode() in ours.stderr
    assert runc.returncode == ours.returncode == 1


def test_bad_config_names_the_field_and_leaves_nothing(rt, bundle):
    (bundle.path / "config.json").write_text("{not json")
    p = rt("create", "-b", str(bundle.path), "c6")
    assert p.returncode == 1 and b"invalid JSON" in p.stderr and b"line 1" in p.stderr
    cfg = dict(bundle.config)
    cfg["process"] = dict(cfg["process"], args=[])
    (bundle.path / "config.json").write_text(json.dumps(cfg))
    p = rt("create", "-b", str(bundle.path), "c6")
    assert p.returncode == 1 and b"process.args" in p.stderr
    cfg["process"]["args"] = ["/bin/true"]
    cfg["linux"] = dict(cfg["linux"], namespaces=[{"type": "bogus"}])
    (bundle.path / "config.json").write_text(json.dumps(cfg))
    p = rt("create", "-b", str(bundle.path), "c6")
    assert p.returncode == 1 and b"linux.namespaces[0].type" in p.stderr
    assert not (rt.root / "c6").exists() and cgroup_dirs_for("c6") == []
    p = rt("create", "-b", str(bundle.path), "bad/id")
    assert p.returncode == 1 and b"invalid id" in p.stderr


def test_list_and_ps(rt, bundle):
    bundle.write(args=["/bin/sh", "-c", "sleep 30 & sleep 30"])
    rt("run", "-d", "-b", str(bundle.path), "c7", check=True)
    assert rt("list", "-q").stdout == b"c7\n"
    lst = json.loads(rt("list", "--format", "json").stdout)
    assert lst[0]["id"] == "c7" and lst[0]["status"] == "running"
    table = rt("list").stdout.decode().splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    pids = json.loads(rt("ps", "--format", "json", "c7").stdout)
    assert rt.state("c7")["pid"] in pids and len(pids) >= 2
    assert rt("kill", "--all", "c7", "KILL").returncode == 0
    assert wait_status(rt, "c7", "stopped") == "stopped"


def test_pause_resume(rt, bundle):
    bundle.write(args=["/bin/sleep", "30"])
    rt("run", "-d", "-b", str(bundle.path), "c8", check=True)
    assert rt("pause", "c8").returncode == 0
    assert rt.state("c8")["status"] == "paused"
    pid = rt.state("c8")["pid"]
    assert open(f"/proc/{pid}/stat").read().split()[2] in ("D", "S")
    assert rt("pause", "c8").returncode == 1
    assert rt("resume", "c8").returncode == 0
    assert rt.state("c8")["status"] == "running"
    assert rt("resume", "c8").returncode == 1
    # a paused container can be force-deleted
    rt("pause", "c8", check=True)
    assert rt("delete", "-f", "c8").returncode == 0
    assert cgroup_dirs_for("c8") == []


def test_features_document(rt):
    f = json.loads(rt("features", check=True).stdout)
    assert "createRuntime" in f["hooks"] and "rbind" in f["mountOptions"]
    assert "CAP_SYS_ADMIN" in f["linux"]["capabilities"]


def test_failing_mount_inside_the_init_leaves_nothing(rt, bundle):
    bundle.config["mounts"].append({"destination": "/x", "type": "bind", "source": "/no/such/dir"})
    bundle.write(args=["/bin/true"])
    p = rt("create", "-b", str(bundle.path), "m1")
    assert p.returncode == 1 and b"mounts[7]" in p.stderr and b"/no/such/dir" in p.stderr
    bundle.config["mounts"][-1] = {"destination": "/x", "type": "nosuchfs", "source": "x"}
    bundle.write()
    p = rt("create", "-b", str(bundle.path), "m1")
    assert p.returncode == 1 and b"nosuchfs" in p.stderr
    assert not (rt.root / "m1").exists() and cgroup_dirs_for("m1") == []
    assert str(bundle.rootfs) not in open("/proc/self/mountinfo").read()


def test_concurrent_starts_one_wins_none_hangs(rt, bundle):
    from runtime_fixtures import RUNTIME

    bundle.write(args=["/bin/sleep", "30"])
    for attempt in range(3):
        cid = f"race{attempt}"
        rt("create", "-b", str(bundle.path), cid, check=True)
        procs = [subprocess.Popen([RUNTIME, "--root", str(rt.root), "start", cid],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for _ in range(2)]
        codes = sorted(p.wait(timeout=20) for p in procs)
        for p in procs:
            p.stderr.close()
        assert codes == [0, 1]
        assert rt.state(cid)["status"] == "running"
        rt("delete", "-f", cid, check=True)
