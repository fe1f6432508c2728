#!/usr/bin/env python3
"""Crash torture for issue 3: "a daemon killed at any point restarts with a consistent store".

Starts a private dockyardd (temp data root, exec root and socket, as tests/integration does),
drives a workload through the real docker CLI (create/start/stop/rm/commit/tag/rmi/import/
load/build/volume create+rm/network create+rm/run -d --rm/run -v/run --restart always/exec/
prune), SIGKILLs the daemon at random moments (and sometimes its monitor too; slow verbs are
killed part-way through), restarts it, and checks:

* ``ps -a``, ``images``, ``volume ls``, ``network ls`` answer;
* the stores on disk pass ``dockyard.metadata.check.check`` (no image naming a missing blob or
  layer, no orphan blob/snapshot/temp file after the start-up reconciliation);
* every listed container inspects; every listed image inspects and (a sample) runs;
* a long-running container survives a daemon kill and ``logs -f`` still follows it (after a
  monitor kill it must be reported exited, never "running");
* at the end every container, image, volume and network can be removed and nothing is left:
  no mounts under the temp root, no cgroups of our containers, no veths of our bridges.

Usage (root)::

    .venv/bin/python scripts/crashcheck.py --rounds 100 --seed 1 [--keep]

Prints one line per kill point and a summary; exit status 1 if any invariant broke.
``run(rounds, seed)`` is what tests/integration/test_crash_consistency.py calls.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.daemon.config import _instance_of
from dockyard.metadata.check import check

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import daemon_procs  # noqa: E402 - tests/daemon_procs.py: the one private-dockyardd start/stop

DOCKER = shutil.which("docker") or "docker"


@dataclass
class Report:
    kill_points: int = 0
    monitor_kills: int = 0
    problems: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    def fail(self, where: str, what: str) -> None:
        self.problems.append(f"[{where}] {what}")


class Daemon:
    """A private dockyardd under ``root``; its monitor is found through the monitor's ping."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sock = str(root / "d.sock")
        self.data = root / "data"
        self.exec = root / "exec"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = daemon_procs.spawn(self.root)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()

    def monitor(self, msg: dict) -> dict:
        return daemon_procs.monitor_request(self.root, msg, timeout=5)

    def monitor_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int(self.monitor({"op": "ping"})["pid"])
        return None

    def docker(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DOCKER_HOST": f"unix://{self.sock}"}
        try:
            return subprocess.run([DOCKER, *args], env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess([DOCKER, *args], 124, "", f"timed out after {timeout}s")


def make_rootfs(dest: Path, extra_mb: int = 0) -> Path:
    bb = shutil.which("busybox") or "/bin/busybox"
    for d in ("bin", "etc", "tmp", "proc", "sys", "dev", "root"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(bb, dest / "bin" / "busybox")
    for a in subprocess.run([bb, "--list"], capture_output=True, text=True, check=True).stdout.split():
        if not (dest / "bin" / a).exists():
            (dest / "bin" / a).symlink_to("busybox")
    (dest / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (dest / "etc" / "group").write_text("root:x:0:\n")
    if extra_mb:
        # many files, so an import or load is killed while it is extracting
        for i in range(extra_mb):
            (dest / "data").mkdir(exist_ok=True)
            (dest / "data" / f"f{i}").write_bytes(os.urandom(1 << 20))
    return dest


class Workload:
    """Docker verbs on random objects; every one may fail (the daemon may be killed under it)."""

    def __init__(self, d: Daemon, rng: random.Random, files: Path) -> None:
        self.d, self.rng, self.files = d, rng, files
        self.n = 0

    def _name(self, p: str) -> str:
        self.n += 1
        return f"{p}{self.n}"

    def _pick(self, *args: str) -> str | None:
        out = self.d.docker(*args, timeout=20).stdout.split()
        return self.rng.choice(out) if out else None

    def _container(self) -> str | None:
        c = self._pick("ps", "-aq", "--filter", "label=crash")
        return c

    def _image(self) -> str | None:
        imgs = [x for x in self.d.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
                if not x.startswith(("busybox:", "<none>", "big:"))]
        return self.rng.choice(imgs) if imgs else None

    def create(self) -> None:
        self.d.docker("create", "--label", "crash", "--name", self._name("c"), "busybox", "sleep", "1000")

    def start(self) -> None:
        if c := self._container():
            self.d.docker("start", c)

    def stop(self) -> None:
        if c := self._container():
            self.d.docker("stop", "-t", "1", c)

    def rm(self) -> None:
        if c := self._container():
            self.d.docker("rm", "-f", c)

    def commit(self) -> None:
        if c := self._container():
            self.d.docker("commit", c, self._name("commit"))

    def tag(self) -> None:
        self.d.docker("tag", "busybox", self._name("tag"))

    def rmi(self) -> None:
        if i := self._image():
            self.d.docker("rmi", "-f", i)

    def import_(self) -> None:
        self.d.docker("import", str(self.files / "big.tar"), self._name("imp"))

    def load(self) -> None:
        self.d.docker("rmi", "-f", "saveme:1")  # so the load below writes everything again
        self.d.docker("load", "-i", str(self.files / "saved.tar"))

    def build(self) -> None:
        self.d.docker("build", "-q", "-t", self._name("build"), "--no-cache", str(self.files / "ctx"))

    def volume(self) -> None:
        if self.rng.random() < 0.3 and (v := self._pick("volume", "ls", "-q")):
            self.d.docker("volume", "rm", v)
        else:
            self.d.docker("volume", "create", self._name("v"))

    def network(self) -> None:
        nets = [n for n in self.d.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
                if n.startswith("n")]
        if nets and self.rng.random() < 0.4:
            self.d.docker("network", "rm", self.rng.choice(nets))
        else:
            self.d.docker("network", "create", self._name("n"))

    def run_rm(self) -> None:
        self.d.docker("run", "-d", "--rm", "--label", "crash", "busybox", "sleep", "0.3")

    def run_vol(self) -> None:
        self.d.docker("run", "-d", "--label", "crash", "-v", f"{self._name('rv')}:/data", "busybox",
                      "sh", "-c", "echo x > /data/x; sleep 1000")

    def exec_(self) -> None:
        self.d.docker("exec", "keeper", "true")

    def prune(self) -> None:
        self.d.docker("container", "prune", "-f", "--filter", "label=crash")
        self.d.docker("image", "prune", "-f")

    def run_always(self) -> None:
        self.d.docker("run", "-d", "--label", "crash", "--restart", "always", "busybox", "sleep", "1000")

    def ops(self) -> dict[str, Callable[[], None]]:
        return {"create": self.create, "start": self.start, "stop": self.stop, "rm": self.rm,
                "commit": self.commit, "tag": self.tag, "rmi": self.rmi, "import": self.import_,
                "load": self.load, "build": self.build, "volume": self.volume, "network": self.network,
                "run-rm": self.run_rm, "run-vol": self.run_vol, "exec": self.exec_, "prune": self.prune,
                "run-always": self.run_always}


SLOW = ("import", "load", "build", "commit")


def _our_links(data_root: Path) -> set[str]:
    """This daemon's bridges and veths (their names carry its instance; network/naming.py),
    but the default bridge, which lives as long as the daemon."""
    inst = _instance_of(data_root)
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    names = {ln.split(":")[1].strip().split("@")[0] for ln in out.splitlines() if ln.count(":") >= 2}
    return {n for n in names if n.startswith(f"dy{inst}") and n != f"dy{inst}-default"}


def _mounts_under(root: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [ln.split()[4] for ln in f if ln.split()[4].startswith(str(root) + "/")]


def _cgroups_of(ids: set[str]) -> list[str]:
    found = []
    base = Path("/sys/fs/cgroup")
    for dirpath, dirnames, _ in os.walk(base):
        for n in dirnames:
            if any(cid in n for cid in ids):
                found.append(os.path.join(dirpath, n))
        if dirpath.count("/") > 6:
            dirnames.clear()
    return found


class Checker:
    def __init__(self, d: Daemon, report: Report, rng: random.Random, run_sample: int = 2) -> None:
        self.d, self.report, self.rng = d, report, rng
        self.run_sample = run_sample  # images run after each restart (all are inspected)
        self.seen_ids: set[str] = set()

    def after_restart(self, where: str, *, monitor_killed: bool) -> None:
        d, fail = self.d, self.report.fail
        for args in (("ps", "-a"), ("images",), ("volume", "ls"), ("network", "ls")):
            r = d.docker(*args, timeout=30)
            if r.returncode != 0:
                fail(where, f"docker {' '.join(args)}: {r.stderr.strip()}")
        # The daemon answers before every start-up task is done (restart policies, monitor
        # reconnection); the stores it reconciled at start are what we judge.
        for p in check(d.data, verify_blobs=True):
            fail(where, str(p))
        paused = d.docker("ps", "-q", "--filter", "status=paused").stdout.split()
        if paused:  # the workload never pauses: a commit's pause must not outlive a crash
            fail(where, f"containers left paused: {paused}")
        ids = d.docker("ps", "-aq", "--no-trunc").stdout.split()
        for stray in sorted(set(_listdir(d.exec / "bundles")) - set(ids)):
            fail(where, f"bundle of a container that does not exist: {stray[:12]}")
        self.seen_ids.update(ids)
        # one inspect for all (the usual case); one by one only to name the culprit
        if ids and d.docker("inspect", "--type", "container", *ids).returncode != 0:
            for cid in ids:
                r = d.docker("inspect", "--type", "container", cid)
                if r.returncode != 0:
                    fail(where, f"container {cid[:12]} does not inspect: {r.stderr.strip()}")
        images = sorted(set(d.docker("images", "-q", "--no-trunc").stdout.split()))
        if images and d.docker("image", "inspect", *images).returncode != 0:
            for iid in images:
                r = d.docker("image", "inspect", iid)
                if r.returncode != 0:
                    fail(where, f"image {iid[:19]} does not inspect: {r.stderr.strip()}")
        for iid in self.rng.sample(images, min(self.run_sample, len(images))):
            r = d.docker("run", "--rm", iid, "true")
            if r.returncode != 0:
                fail(where, f"image {iid[:19]} does not run: {r.stderr.strip()}")
        self.keeper(where, monitor_killed=monitor_killed)

    def keeper(self, where: str, *, monitor_killed: bool) -> None:
        d, fail = self.d, self.report.fail
        st = d.docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "keeper")
        if st.returncode != 0:
            fail(where, f"keeper vanished: {st.stderr.strip()}")
            return
        status = st.stdout.split()[0]
        if not monitor_killed and status != "running":
            fail(where, f"keeper did not survive a daemon kill: {st.stdout.strip()}")
        if monitor_killed and status == "running":
            # its monitor died: the container was killed; "running" would be a lie
            pid = d.docker("inspect", "-f", "{{.State.Pid}}", "keeper").stdout.strip()
            if not pid.isdigit() or not Path(f"/proc/{pid}").exists():
                fail(where, "keeper reported running after its monitor was killed, but is gone")
        if status != "running":
            r = d.docker("start", "keeper")
            if r.returncode != 0:
                fail(where, f"keeper does not restart: {r.stderr.strip()}")
                return
        # logs -f must follow: a new line arrives while we watch
        env = {**os.environ, "DOCKER_HOST": f"unix://{d.sock}"}
        p = subprocess.Popen([DOCKER, "logs", "-f", "--tail", "0", "keeper"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert p.stdout is not None
            got = [b""]
            t = threading.Thread(target=lambda: got.__setitem__(0, p.stdout.readline()), daemon=True)
            t.start()
            t.join(5)
            if not got[0].startswith(b"tick"):
                fail(where, f"logs -f of keeper gave nothing in 5 s ({got[0]!r})")
        finally:
            p.kill()
            p.wait()

    def final(self) -> None:
        d, fail = self.d, self.report.fail
        for iid in sorted(set(d.docker("images", "-q", "--no-trunc").stdout.split())):
            r = d.docker("run", "--rm", iid, "true")  # every image that survived runs
            if r.returncode != 0:
                fail("final", f"image {iid[:19]} does not run: {r.stderr.strip()}")
        ids = d.docker("ps", "-aq", "--no-trunc").stdout.split()
        self.seen_ids.update(ids)
        for cid in ids:
            r = d.docker("rm", "-f", "-v", cid)
            if r.returncode != 0:
                fail("final", f"rm -f {cid[:12]}: {r.stderr.strip()}")
        for iid in d.docker("images", "-q", "--no-trunc").stdout.split():
            r = d.docker("rmi", "-f", iid)
            if r.returncode != 0 and "No such image" not in r.stderr:
                fail("final", f"rmi -f {iid[:19]}: {r.stderr.strip()}")
        for v in d.docker("volume", "ls", "-q").stdout.split():
            r = d.docker("volume", "rm", v)
            if r.returncode != 0:
                fail("final", f"volume rm {v}: {r.stderr.strip()}")
        for n in d.docker("network", "ls", "--format", "{{.Name}}").stdout.split():
            if n not in ("bridge", "host", "none"):
                r = d.docker("network", "rm", n)
                if r.returncode != 0:
                    fail("final", f"network rm {n}: {r.stderr.strip()}")
        for args in (("ps", "-aq"), ("images", "-q"), ("volume", "ls", "-q")):
            left = d.docker(*args).stdout.split()
            if left:
                fail("final", f"docker {' '.join(args)} still lists {left}")
        for p in check(d.data, verify_blobs=True):
            fail("final", str(p))
        # Images are gone: every blob and layer must be too (gc ran at rmi).
        blobs = _listdir(d.data / "image" / "content" / "blobs" / "sha256")
        if blobs:
            fail("final", f"{len(blobs)} blobs left after removing every image")
        for sub in ("bundles", "runtime", "monitor"):
            left = [n for n in _listdir(d.exec / sub) if n[:64].isalnum() and len(n) >= 64]
            if left:
                fail("final", f"exec-root/{sub} still holds {[n[:12] for n in left]}")
        mounts = _mounts_under(d.root)
        if mounts:
            fail("final", f"mounts left: {mounts}")
        if cg := _cgroups_of(self.seen_ids):
            fail("final", f"cgroups left: {cg[:5]}")
        if links := _our_links(d.data):
            fail("final", f"bridges/veths left: {sorted(links)}")


def _listdir(p: Path) -> list[str]:
    try:
        return os.listdir(p)
    except FileNotFoundError:
        return []


def _prepare_files(files: Path, big_mb: int) -> None:
    rootfs = make_rootfs(files / "rootfs")
    with tarfile.open(files / "busybox.tar", "w") as tf:
        tf.add(rootfs, arcname=".")
    big = make_rootfs(files / "bigfs", extra_mb=big_mb)
    with tarfile.open(files / "big.tar", "w") as tf:
        tf.add(big, arcname=".")
    (files / "ctx").mkdir()
    (files / "ctx" / "Dockerfile").write_text(
        "FROM busybox\nRUN dd if=/dev/urandom of=/a bs=1M count=8 2>/dev/null\n"
        "RUN mkdir /b && for i in 1 2 3 4 5 6 7 8; do echo $i > /b/$i; done\nCMD [\"true\"]\n")


def run(rounds: int, seed: int, *, big_mb: int = 24, keep: bool = False, run_sample: int = 2,
        monitor_rate: float = 0.15, echo: Callable[[str], None] = lambda s: None) -> Report:
    """``rounds`` kill points; returns what broke (``Report.problems`` empty: all invariants held)."""
    rng = random.Random(seed)
    report = Report()
    root = Path(tempfile.mkdtemp(prefix="dycrash-", dir="/tmp"))
    files = root / "files"
    files.mkdir()
    _prepare_files(files, big_mb)
    d = Daemon(root)
    checker = Checker(d, report, rng, run_sample)
    try:
        d.start()
        for args in (("import", str(files / "busybox.tar"), "busybox:latest"),
                     ("import", str(files / "big.tar"), "saveme:1"),
                     ("save", "-o", str(files / "saved.tar"), "saveme:1"),
                     ("run", "-d", "--name", "keeper", "busybox", "sh", "-c",
                      "while true; do echo tick; sleep 0.2; done")):
            r = d.docker(*args)
            if r.returncode != 0:
                raise RuntimeError(f"setup: docker {args[0]}: {r.stderr}")
        wl = Workload(d, rng, files)
        ops = wl.ops()
        durations: dict[str, float] = {}
        for name in SLOW:  # how long the slow verbs take, to kill them part-way
            t0 = time.monotonic()
            if name == "commit":
                wl.create()
            ops[name]()
            durations[name] = time.monotonic() - t0
        echo(f"durations: { {k: round(v, 2) for k, v in durations.items()} }")
        for i in range(rounds):
            where = f"round {i}"
            if rng.random() < 0.5:
                name = rng.choice(SLOW)
                seq = [name]
                delay = rng.uniform(0.05, 0.95) * durations[name]
            else:
                seq = rng.sample(sorted(ops), rng.randint(1, 3))
                delay = rng.uniform(0.0, 0.6)
            kill_monitor = rng.random() < monitor_rate
            worker = threading.Thread(target=lambda s=seq: [ops[n]() for n in s], daemon=True)
            worker.start()
            time.sleep(delay)
            mpid = d.monitor_pid() if kill_monitor else None
            d.kill()
            if mpid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(mpid, signal.SIGKILL)
                report.monitor_kills += 1
            worker.join(90)
            report.kill_points += 1
            before = len(report.problems)
            d.start()
            checker.after_restart(where, monitor_killed=mpid is not None)
            line = (f"{where}: {'+'.join(seq)} killed after {delay:.2f}s"
                    f"{' (+monitor)' if mpid else ''}: {len(report.problems) - before} problem(s)")
            report.log.append(line)
            echo(line)
            for p in report.problems[before:]:
                echo("    " + p)
        checker.final()
    except RuntimeError:
        keep = True  # for a look at what made the daemon fail to start
        raise
    finally:
        _teardown(d, keep)
    return report


def _teardown(d: Daemon, keep: bool) -> None:
    daemon_procs.stop(d.root, d.proc, rmtree=False)
    _kill_leftover_containers(d)
    if not keep:
        shutil.rmtree(d.root, ignore_errors=True)


def _kill_leftover_containers(d: Daemon) -> None:
    """When the daemon could not clean up (it failed to start): the processes of this run's
    containers (found by their cgroups, named by our container ids) must not outlive it."""
    ids = {n for sub in (d.data / "containers", d.exec / "runtime", d.exec / "bundles")
           for n in _listdir(sub) if len(n) == 64}
    if not ids:
        return
    for path in _cgroups_of(ids):
        freezer = Path(path) / "freezer.state"
        with contextlib.suppress(OSError):
            if freezer.exists():
                freezer.write_text("THAWED")  # a frozen process can't die
        with contextlib.suppress(OSError):
            for pid in Path(path, "cgroup.procs").read_text().split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
    time.sleep(0.2)
    for path in sorted(_cgroups_of(ids), key=len, reverse=True):
        with contextlib.suppress(OSError):
            os.rmdir(path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--big-mb", type=int, default=24, help="size of the imported tarball's extra data")
    ap.add_argument("--keep", action="store_true", help="keep the temp root for inspection")
    ap.add_argument("--monitor-rate", type=float, default=0.15, help="share of kills that take the monitor too")
    a = ap.parse_args()
    print(f"seed {a.seed}")
    rep = run(a.rounds, a.seed, big_mb=a.big_mb, keep=a.keep, monitor_rate=a.monitor_rate, echo=lambda s: print(s, flush=True))
    print(f"{rep.kill_points} kill points ({rep.monitor_kills} with the monitor), "
          f"{len(rep.problems)} problem(s)")
    for p in rep.problems:
        print("  " + p)
    return 1 if rep.problems else 0


if __name__ == "__main__":
    sys.exit(main())
