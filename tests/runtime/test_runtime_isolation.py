"""What a container sees: mounts, read-only and masked paths, capabilities, seccomp, cgroup
limits, rlimits, user namespaces, hooks, exec, console socket (root, real containers)."""

from __future__ import annotations

import array
import json
import os
import shutil
import socket
import subprocess
import time

import pytest
from runtime_fixtures import Runtime, bundle_fixture, cgroup_dirs_for, rt_fixture  # noqa: F401 - pytest fixtures

pytestmark = pytest.mark.root


def run_sh(rt: Runtime, bundle, script: str, cid: str = "x") -> subprocess.CompletedProcess:
    bundle.write(args=["/bin/sh", "-c", script])
    return rt("run", "-b", str(bundle.path), cid)


def test_readonly_root_and_paths(rt, bundle):
    p = run_sh(rt, bundle, "touch /x 2>&1; echo 1 > /proc/sys/kernel/domainname 2>&1;"
                            "touch /dev/shm/ok && echo shm-ok")
    out = p.stdout.decode()
    assert "Read-only file system" in out.splitlines()[0]
    assert b"domainname: Read-only file system" in p.stderr
    assert "shm-ok" in out
    assert not (bundle.rootfs / "x").exists()


def test_masked_paths(rt, bundle):
    bundle.config["linux"]["maskedPaths"] = ["/proc/timer_list", "/proc/acpi", "/etc/secret"]
    (bundle.rootfs / "etc" / "secret").write_text("hidden\n")
    p = run_sh(rt, bundle, "wc -c < /proc/timer_list; ls /proc/acpi | wc -l; cat /etc/secret;"
                            "echo end")
    assert p.stdout.decode().split() == ["0", "0", "end"]


def test_mounts_tmpfs_bind_and_propagation(rt, bundle, tmp_path):
    host = tmp_path / "hostdir"
    host.mkdir()
    (host / "f").write_text("from-host")
    bundle.config["mounts"] += [
        {"destination": "/data", "type": "tmpfs", "source": "tmpfs",
         "options": ["size=1m", "mode=700"]},
        {"destination": "/host", "type": "bind", "source": str(host), "options": ["rbind", "ro"]},
    ]
    p = run_sh(rt, bundle, "grep -E ' /data | /host ' /proc/mounts; cat /host/f; echo;"
                            "touch /host/g 2>&1; stat -c %a /data")
    out = p.stdout.decode()
    assert "tmpfs /data tmpfs rw" in out and "size=1024k" in out
    assert " /host " in out and "from-host" in out
    assert "Read-only file system" in out and out.strip().endswith("700")
    # nothing leaked to the host's mount table
    assert str(bundle.rootfs) not in open("/proc/self/mounts").read()


def test_devices_and_symlinks(rt, bundle):
    p = run_sh(rt, bundle, "ls -l /dev/null /dev/zero /dev/urandom /dev/tty | cut -c1;"
                            "readlink /dev/fd; readlink /dev/ptmx; head -c 3 /dev/zero | wc -c")
    out = p.stdout.decode().split()
    assert out[:4] == ["c", "c", "c", "c"]
    assert out[4:6] == ["/proc/self/fd", "pts/ptmx"] and out[6] == "3"


def test_capabilities_in_status(rt, bundle):
    bundle.config["process"]["capabilities"] = {
        k: ["CAP_CHOWN", "CAP_KILL"] for k in ("bounding", "effective", "permitted")}
    p = run_sh(rt, bundle, "grep -E '^Cap(Eff|Bnd|Prm)' /proc/self/status")
    want = f"{(1 << 0) | (1 << 5):016x}"
    lines = dict(line.split(":\t") for line in p.stdout.decode().splitlines())
    assert lines == {"CapPrm": want, "CapEff": want, "CapBnd": want}


def test_no_new_privileges_and_user(rt, bundle):
    bundle.config["process"]["user"] = {"uid": 65534, "gid": 65534, "additionalGids": [5]}
    p = run_sh(rt, bundle, "id -u; id -g; id -G; grep NoNewPrivs /proc/self/status")
    out = p.stdout.decode().split()
    assert out[:2] == ["65534", "65534"] and "5" in out[2:4]
    assert out[-2:] == ["NoNewPrivs:", "1"]


def test_seccomp_denies_mkdir(rt, bundle):
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                      "errnoRet": 1}],
    }
    bundle.config["root"]["readonly"] = False
    p = run_sh(rt, bundle, "mkdir /tmp/d 2>&1; grep Seccomp: /proc/self/status; touch /tmp/f && echo ok")
    out = p.stdout.decode()
    assert "Operation not permitted" in out and "Seccomp:\t2" in out and "ok" in out
    # the compiled program is cached under the root, and is no container
    assert len(list((rt.root / "#seccomp").iterdir())) == 1
    assert rt("list", "-q").stdout == b""
    p = run_sh(rt, bundle, "mkdir /tmp/d 2>&1", cid="again")  # from the cache this time
    assert b"Operation not permitted" in p.stdout


def test_bad_seccomp_profile_is_rejected(rt, bundle):
    bundle.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_BOGUS"}
    p = run_sh(rt, bundle, "true")
    assert p.returncode == 1 and b"linux.seccomp.defaultAction" in p.stderr
    assert not (rt.root / "x").exists()


def test_memory_limit_oom_kill(rt, bundle):
    bundle.config["linux"]["resources"]["memory"] = {"limit": 16 * 1024 * 1024, "swap": 16 * 1024 * 1024}
    bundle.write(args=["/bin/sh", "-c", "dd if=/dev/zero of=/dev/null bs=64M count=1; echo survived"])
    rt("run", "--keep", "-b", str(bundle.path), "oom")
    from dockyard.linux import cgroups
    from dockyard.runtime import state

    rec = state.load(str(rt.root), "oom")
    assert cgroups.oom_kills(cgroups.Cgroup.from_dict(rec["cgroup"])) >= 1
    rt("delete", "-f", "oom", check=True)
    assert cgroup_dirs_for("oom") == []


def test_pids_limit_stops_fork_bomb(rt, bundle):
    bundle.config["linux"]["resources"]["pids"] = {"limit": 8}
    bundle.write(args=["/bin/sleep", "30"])
    rt("run", "-d", "-b", str(bundle.path), "pids", check=True)
    p = rt("exec", "pids", "/bin/sh", "-c", "for i in $(seq 30); do sleep 30 & done")
    assert b"fork" in p.stderr  # the shell hit the limit
    n = len(json.loads(rt("ps", "--format", "json", "pids", check=True).stdout))
    assert 2 < n <= 8


def test_rlimits(rt, bundle):
    bundle.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}]
    p = run_sh(rt, bundle, "ulimit -n; ulimit -Hn")
    assert p.stdout.decode().split() == ["123", "456"]


def test_cpu_and_cpuset_resources(rt, bundle):
    bundle.config["linux"]["resources"]["cpu"] = {"shares": 512, "quota": 50000,
                                                  "period": 100000, "cpus": "0"}
    bundle.write(args=["/bin/sleep", "30"])
    rt("run", "-d", "-b", str(bundle.path), "cpu", check=True)
    from dockyard.linux import cgroups
    from dockyard.runtime import state

    cg = cgroups.Cgroup.from_dict(state.load(str(rt.root), "cpu")["cgroup"])
    if cg.version == 1:
        assert open(cg.dir_for("cpu") + "/cpu.shares").read().strip() == "512"
        assert open(cg.dir_for("cpu") + "/cpu.cfs_quota_us").read().strip() == "50000"
        assert open(cg.dir_for("cpuset") + "/cpuset.cpus").read().strip() == "0"
    else:
        assert open(cg.dirs[""] + "/cpu.max").read().split() == ["50000", "100000"]


@pytest.fixture
def public_bundle(busybox_rootfs):
    """A bundle in a world-traversable directory (a user namespace's root is not host root)."""
    import tempfile

    from runtime_fixtures import Bundle

    d = tempfile.mkdtemp(prefix="dy-userns-", dir="/var/tmp")
    os.chmod(d, 0o755)
    try:
        yield Bundle(__import__("pathlib").Path(d) / "bundle", busybox_rootfs)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_user_namespace_mapping(rt, public_bundle):
    bundle = public_bundle
    os.chmod(bundle.path, 0o755)
    bundle.config["linux"]["namespaces"].append({"type": "user"})
    bundle.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.write(args=["/bin/sleep", "30"])
    rt("run", "-d", "-b", str(bundle.path), "userns", check=True)
    pid = rt.state("userns")["pid"]
    with open(f"/proc/{pid}/status") as f:
        uids = [line for line in f if line.startswith("Uid:")][0].split()[1:]
    assert uids == ["100000"] * 4
    assert open(f"/proc/{pid}/uid_map").read().split() == ["0", "100000", "65536"]
    p = rt("exec", "userns", "/bin/sh", "-c", "id -u; grep -c . /proc/self/uid_map")
    assert p.stdout.decode().split() == ["0", "1"], p.stderr


def test_user_namespace_without_mappings_is_rejected(rt, bundle):
    bundle.config["linux"]["namespaces"].append({"type": "user"})
    p = run_sh(rt, bundle, "true")
    assert p.returncode == 1 and b"linux.uidMappings" in p.stderr


def test_hooks_get_state_on_stdin(rt, bundle, tmp_path):
    out = tmp_path / "hooks"
    out.mkdir()

    def hook(name: str) -> dict:
        return {"path": "/bin/sh", "args": ["sh", "-c", f"cat > {out}/{name}"]}

    bundle.config["hooks"] = {n: [hook(n)] for n in
                              ("prestart", "createRuntime", "poststart", "poststop")}
    # the container's own hooks run inside it: they write where the container can see
    (bundle.rootfs / "hookout").mkdir()
    bundle.config["mounts"].append({"destination": "/hookout", "type": "bind",
                                    "source": str(out), "options": ["rbind"]})
    bundle.config["hooks"]["startContainer"] = [
        {"path": "/bin/sh", "args": ["sh", "-c", "cat > /hookout/startContainer"]}]
    # createContainer: in the container's namespaces, before pivot_root (host paths)
    bundle.config["hooks"]["createContainer"] = [
        {"path": "/bin/sh", "args": ["sh", "-c", f"cat > {out}/createContainer; "
                                     f"readlink /proc/self/ns/mnt > {out}/cc_mnt"]}]
    bundle.write(args=["/bin/sleep", "30"])
    rt("create", "-b", str(bundle.path), "hk", check=True)
    pid = rt.state("hk")["pid"]
    cr = json.loads((out / "createRuntime").read_text())
    assert cr["id"] == "hk" and cr["pid"] == pid and cr["status"] == "creating"
    assert cr["bundle"] == str(bundle.path)
    assert (out / "prestart").exists() and not (out / "poststart").exists()
    cc = json.loads((out / "createContainer").read_text())
    assert cc["id"] == "hk" and cc["pid"] == pid
    assert (out / "cc_mnt").read_text().strip() == os.readlink(f"/proc/{pid}/ns/mnt")
    assert os.readlink(f"/proc/{pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
    rt("start", "hk", check=True)
    assert json.loads((out / "poststart").read_text())["status"] == "running"
    sc = json.loads((out / "startContainer").read_text())
    assert sc["id"] == "hk" and sc["pid"] == pid
    rt("delete", "-f", "hk", check=True)
    assert json.loads((out / "poststop").read_text())["id"] == "hk"


def test_failing_hook_fails_create_and_cleans_up(rt, bundle):
    bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/false"}]}
    p = run_sh(rt, bundle, "true", cid="hf")
    assert p.returncode == 1 and b"error running createRuntime hook #0" in p.stderr
    assert not (rt.root / "hf").exists() and cgroup_dirs_for("hf") == []


def test_exec_into_running_container(rt, bundle, tmp_path):
    bundle.config["hostname"] = "box"
    bundle.write(args=["/bin/sleep", "30"])
    rt("run", "-d", "-b", str(bundle.path), "ex", check=True)
    p = rt("exec", "ex", "/bin/sh", "-c", "echo $$ $(hostname); cat /proc/1/cmdline; exit 5")
    assert p.returncode == 5, p.stderr
    words = p.stdout.decode().split()
    assert words[0] != "1" and words[1] == "box" and words[2].startswith("/bin/sleep")
    proc = dict(bundle.config["process"], args=["/bin/sh", "-c", "echo from-process-json;"
                                                 "cat /proc/self/oom_score_adj; ulimit -n"],
                oomScoreAdj=300, rlimits=[{"type": "RLIMIT_NOFILE", "soft": 77, "hard": 77}])
    (tmp_path / "p.json").write_text(json.dumps(proc))
    p = rt("exec", "-p", str(tmp_path / "p.json"), "ex")
    assert p.returncode == 0 and p.stdout.split() == [b"from-process-json", b"300", b"77"], \
        p.stderr
    pidfile = tmp_path / "exec.pid"
    rt("exec", "-d", "--pid-file", str(pidfile), "ex", "/bin/sleep", "30", check=True)
    epid = int(pidfile.read_text())
    assert open(f"/proc/{epid}/cmdline", "rb").read().startswith(b"/bin/sleep")
    bad = rt("exec", "ex", "nosuchcmd")  # runc: "exec failed: ...", status 255
    assert bad.returncode == 255 and b"exec failed: unable to start container process: " \
        b'exec: \\"nosuchcmd\\": executable file not found in $PATH' in bad.stderr
    rt("delete", "-f", "ex", check=True)
    assert not os.path.exists(f"/proc/{epid}") or open(f"/proc/{epid}/stat").read().split()[2] == "Z"


def test_exec_into_stopped_container_fails(rt, bundle):
    bundle.write(args=["/bin/true"])
    rt("run", "--keep", "-b", str(bundle.path), "exs", check=True)
    p = rt("exec", "exs", "/bin/true")
    assert p.returncode == 255 and b"stopped" in p.stderr


def test_console_socket_receives_pty(rt, bundle, tmp_path):
    sock_path = str(tmp_path / "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)
    try:
        bundle.write(args=["/bin/sh", "-c", "tty; echo hello-tty"], terminal=True)
        rt("create", "--console-socket", sock_path, "-b", str(bundle.path), "tty", check=True)
        conn, _ = srv.accept()
        fds = array.array("i")
        msg, anc, _, _ = conn.recvmsg(1024, socket.CMSG_SPACE(4))
        for level, typ, data in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds.frombytes(data[:4])
        conn.close()
        assert msg.startswith(b"/dev/pts/") and len(fds) == 1
        master = fds[0]
        rt("start", "tty", check=True)
        buf = b""
        deadline = time.monotonic() + 10
        while b"hello-tty" not in buf and time.monotonic() < deadline:
            try:
                chunk = os.read(master, 1024)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
        os.close(master)
        assert b"/dev/pts/0" in buf and b"hello-tty" in buf
    finally:
        srv.close()


def test_terminal_without_console_socket_is_rejected(rt, bundle):
    bundle.write(args=["/bin/true"], terminal=True)
    p = rt("create", "-b", str(bundle.path), "nt")
    assert p.returncode == 1 and b"console socket" in p.stderr


@pytest.mark.skipif(shutil.which("runc") is None, reason="runc not installed")
def test_same_view_as_runc(tmp_path, bundle):
    script = ("grep -E '^Cap|^NoNewPrivs|^Sig(Ign|Blk)' /proc/self/status; hostname; ls /dev;"
              "ulimit -n; echo $HOME; "
              "awk '{print $2, $3}' /proc/mounts | sort; echo pid=$$")
    bundle.write(args=["/bin/sh", "-c", script])
    runc = subprocess.run(["runc", "--root", str(tmp_path / "runc"), "run", "-b",
                           str(bundle.path), "cmp"], capture_output=True, timeout=30)
    ours = Runtime(tmp_path / "ours")("run", "-b", str(bundle.path), "cmp")
    assert runc.returncode == ours.returncode == 0
    assert ours.stdout.decode() == runc.stdout.decode()


def test_new_network_namespace_has_loopback_up(rt, bundle):
    p = run_sh(rt, bundle, "ip -o link | wc -l; ip -o link show lo")
    out = p.stdout.decode()
    assert out.split()[0] == "1"  # only lo: a private network namespace
    assert "<LOOPBACK,UP" in out


def test_foreground_terminal_without_console_socket(rt, bundle):
    pexpect = pytest.importorskip("pexpect")
    from runtime_fixtures import RUNTIME

    bundle.write(args=["/bin/sh"], terminal=True)
    child = pexpect.spawn(RUNTIME, ["--root", str(rt.root), "run", "-b", str(bundle.path), "fg"],
                          timeout=15)
    try:
        child.expect(rb"# ")
        child.sendline(b"echo $((6*7)); tty")
        child.expect(b"42")
        child.expect(b"/dev/pts/0")
        rt("exec", "fg", "/bin/true", check=True)  # the container is up meanwhile
        child.sendline(b"exit 4")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 4
    assert rt("list", "-q").stdout == b""


def test_home_and_missing_cwd(rt, bundle):
    bundle.config["root"]["readonly"] = False
    bundle.write(args=["/bin/sh", "-c", "echo $HOME; pwd"], cwd="/work/dir")
    p = rt("run", "-b", str(bundle.path), "home")
    assert p.stdout.decode().split() == ["/root", "/work/dir"], p.stderr
    bundle.write(args=["/bin/sh", "-c", "echo $HOME"], cwd="/", env=["PATH=/bin", "HOME=/x"])
    assert rt("run", "-b", str(bundle.path), "home").stdout.strip() == b"/x"


def test_sysctl_oom_score_adj_umask(rt, bundle):
    bundle.config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.shmmax": "65536"}
    bundle.config["process"]["oomScoreAdj"] = 500
    bundle.config["process"]["user"]["umask"] = 0o027
    p = run_sh(rt, bundle, "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax "
                            "/proc/self/oom_score_adj; umask")
    assert p.stdout.decode().split() == ["1", "65536", "500", "0027"], p.stderr
    with open("/proc/sys/net/ipv4/ip_forward") as f:  # the host's value is its own
        host = f.read().strip()
    bundle.config["linux"]["sysctl"] = {"net.ipv4.no_such_knob": "1"}
    p = run_sh(rt, bundle, "true", cid="bad")
    assert p.returncode == 1 and b"linux.sysctl.net.ipv4.no_such_knob" in p.stderr
    assert open("/proc/sys/net/ipv4/ip_forward").read().strip() == host


def test_join_namespaces_by_path(rt, bundle, tmp_path):
    bundle.write(args=["/bin/sleep", "30"])
    rt("run", "-d", "-b", str(bundle.path), "first", check=True)
    pid = rt.state("first")["pid"]
    second = json.loads(json.dumps(bundle.config))
    second["linux"]["namespaces"] = [
        {"type": "pid", "path": f"/proc/{pid}/ns/pid"},
        {"type": "network", "path": f"/proc/{pid}/ns/net"},
        {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
    ]
    second["process"]["args"] = ["/bin/sh", "-c", "readlink /proc/self/ns/net; echo $$; "
                                 "ls /proc | grep -c '^[0-9]'"]
    (bundle.path / "config.json").write_text(json.dumps(second))
    p = rt("run", "-b", str(bundle.path), "second")
    out = p.stdout.decode().split()
    assert out[0] == os.readlink(f"/proc/{pid}/ns/net"), p.stderr
    assert out[1] != "1"  # pid 1 of that namespace is the first container's sleep
    assert int(out[2]) >= 2


def test_devices_cgroup_denies_unlisted_devices(rt, bundle):
    st = os.stat("/dev/null")
    caps = ["CAP_MKNOD", "CAP_DAC_OVERRIDE"]
    bundle.config["process"]["capabilities"] = {k: caps for k in ("bounding", "effective",
                                                                   "permitted")}
    bundle.config["root"]["readonly"] = False
    # /dev/null's own numbers are allowed by default; the same node as a block device is not
    p = run_sh(rt, bundle, f"mknod /tmp/c c {os.major(st.st_rdev)} {os.minor(st.st_rdev)} && "
                            "echo ok > /tmp/c && echo char-ok; mknod /tmp/b b 7 0 2>&1; "
                            "head -c1 /tmp/b 2>&1; rm -f /tmp/b /tmp/c")
    out = p.stdout.decode()
    assert "char-ok" in out and "Operation not permitted" in out


def test_blkio_throttle(rt, bundle):
    dev = os.stat("/").st_dev
    rule = {"major": os.major(dev), "minor": os.minor(dev), "rate": 1048576}
    bundle.config["linux"]["resources"]["blockIO"] = {"throttleReadBpsDevice": [rule]}
    bundle.write(args=["/bin/sleep", "30"])
    rt("run", "-d", "-b", str(bundle.path), "blk", check=True)
    from dockyard.linux import cgroups
    from dockyard.runtime import state

    cg = cgroups.Cgroup.from_dict(state.load(str(rt.root), "blk")["cgroup"])
    if cg.version == 1:
        got = open(cg.dir_for("blkio") + "/blkio.throttle.read_bps_device").read().split()
        assert got == [f"{rule['major']}:{rule['minor']}", "1048576"]
    rt("delete", "-f", "blk", check=True)
    assert cgroup_dirs_for("blk") == []


def test_session_keyring(rt, bundle):
    bundle.config["linux"]["maskedPaths"] = []
    bundle.write(args=["/bin/sh", "-c", "cat /proc/keys"])
    cid = f"keys{os.getpid()}"
    p = rt("run", "-b", str(bundle.path), cid)
    assert f"_ses.{cid}".encode() in p.stdout, p.stderr  # a keyring of its own, like runc
    other = f"nokeys{os.getpid()}"
    p = rt("run", "--no-new-keyring", "-b", str(bundle.path), other)
    assert p.returncode == 0 and f"_ses.{other}".encode() not in p.stdout
