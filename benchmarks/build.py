"""`docker build` of a small project through the real docker CLI: dockyardd (and dockerd).

The project (the issue's): FROM busybox; three RUN; COPY of a 1 MB file and of a folder of
1,000 small files; ENV; WORKDIR; CMD. Two numbers per builder, medians of N builds (ms), the builders taking turns
build by build (the load of a shared machine varies by the minute):

- ``no-cache``  ``docker build --no-cache -q -t bench .``
- ``cached``    ``docker build -q -t bench .`` after a first build (every step a cache hit)

A private dockyardd is started on a temp socket/data root (``.venv/bin/dockyardd``, or the
command given with ``--daemon``). With ``--dockerd`` (and Debian's docker.io installed) a
private dockerd runs the same builds with the classic builder (DOCKER_BUILDKIT=0), as
/work/shared/acceptance/engine-speed starts it, and then with BuildKit (Debian's 20.10 client at
/usr/bin/docker, DOCKER_BUILDKIT=1, ``--network none``: RUN gets a namespace with only lo, as
with dockyardd). Needs root and busybox-static.

``--baseline DIR`` adds a dockyardd run from another checkout's ``src/`` (before/after).

Usage: .venv/bin/python benchmarks/build.py [N] [--dockerd] [--daemon "CMD ..."] [--baseline DIR]
"""

from __future__ import annotations

import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
# Debian's docker.io client (20.10) still has BuildKit built in (DOCKER_BUILDKIT=1); the
# docker 28 CLI on PATH would need buildx for it.
BUILDKIT_CLIENT = "/usr/bin/docker"
DOCKERFILE = """\
FROM busybox
RUN echo one > /one
RUN mkdir -p /opt/app && echo two > /opt/app/two
ENV APP_HOME=/opt/app
WORKDIR /opt/app
COPY big.bin ./
COPY files/ ./files/
RUN ls files | wc -l > count
CMD ["cat", "count"]
"""


def make_project(root: Path) -> Path:
    ctx = root / "project"
    (ctx / "files").mkdir(parents=True)
    (ctx / "big.bin").write_bytes(os.urandom(1 << 20))
    for i in range(1000):
        (ctx / "files" / f"f{i:04d}.txt").write_text(f"file {i}\n")
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    return ctx


def busybox_tar(root: Path) -> Path:
    bb = shutil.which("busybox")
    if bb is None:
        sys.exit("busybox-static is needed")
    rootfs = root / "bbroot"
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "root"):
        (rootfs / d).mkdir(parents=True)
    shutil.copy2(bb, rootfs / "bin" / "busybox")
    for applet in subprocess.run([bb, "--list"], capture_output=True, text=True).stdout.split():
        if not (rootfs / "bin" / applet).exists():
            (rootfs / "bin" / applet).symlink_to("busybox")
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\n")
    out = root / "busybox.tar"
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(out), "."], check=True)
    return out


def wait_ping(sock: Path, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            sys.exit(f"daemon exited with {proc.returncode}")
        r = subprocess.run(["curl", "-sf", "--unix-socket", str(sock), "http://d/_ping"],
                           capture_output=True)
        if r.returncode == 0:
            return
        time.sleep(0.1)
    sys.exit("daemon did not answer /_ping")


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    dt = (time.perf_counter() - t0) * 1000
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {r.stdout[-500:]} {r.stderr[-500:]}")
    return dt


class Target:
    """One builder under test: its docker command line and environment."""

    def __init__(self, name: str, sock: Path, ctx: Path, tar: Path, classic: bool, docker: str = "docker") -> None:
        self.name = name
        self.env = dict(os.environ, DOCKER_HOST=f"unix://{sock}", DOCKER_BUILDKIT="0" if classic else "1")
        subprocess.run([docker, "import", str(tar), "busybox:latest"], env=self.env, check=True,
                       capture_output=True)
        # BuildKit: RUN in a network namespace with only lo, what dockyardd gives RUN by default
        # (the private dockerd has no bridge, which BuildKit's default network needs)
        self.build = [docker, "build", "-q", "-t", "bench", str(ctx)] if classic else \
            [docker, "build", "--network", "none", "-q", "-t", "bench", str(ctx)]
        self.nocache: list[float] = []
        self.cached: list[float] = []

    def once(self, no_cache: bool) -> float:
        cmd = self.build[:2] + ["--no-cache"] + self.build[2:] if no_cache else self.build
        return timed(cmd, self.env)


def measure(targets: list[Target], n: int) -> None:
    """Round robin, so that every builder sees the same machine load (it varies a lot here)."""
    for t in targets:
        t.once(False)  # warm: the first build fills the cache
    for _ in range(n):
        for t in targets:
            t.nocache.append(t.once(True))
    for t in targets:
        t.once(False)
    for _ in range(n):
        for t in targets:
            t.cached.append(t.once(False))
    for t in targets:
        a, b = statistics.median(t.nocache), statistics.median(t.cached)
        print(f"{t.name:10s} no-cache {a:8.1f} ms   cached {b:7.1f} ms   (median of {n})")


def stop(proc: subprocess.Popen[bytes], root: Path) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    with open("/proc/self/mountinfo") as f:
        points = [ln.split()[4] for ln in f if ln.split()[4].startswith(str(root))]
    for p in sorted(points, reverse=True):
        subprocess.run(["umount", "-l", p], capture_output=True)


def main() -> None:
    args = sys.argv[1:]
    n = int(args[0]) if args and args[0].isdigit() else 5
    daemon = [str(VENV_BIN / "dockyardd")]
    if "--daemon" in args:
        daemon = shlex.split(args[args.index("--daemon") + 1])
    root = Path(tempfile.mkdtemp(prefix="bench-build-", dir="/var/tmp"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        ctx = make_project(root)
        tar = busybox_tar(root)
        d = root / "dy"
        d.mkdir()
        log = open(d / "log", "wb")  # noqa: SIM115 - closed with the process
        p = subprocess.Popen(daemon + ["--host", f"unix://{d}/d.sock", "--data-root", str(d / "root"),
                                       "--exec-root", str(d / "exec")], stdout=log, stderr=log)
        procs.append(p)
        wait_ping(d / "d.sock", p)
        targets = [Target("dockyardd", d / "d.sock", ctx, tar, classic=True)]
        if "--baseline" in args:
            # another checkout of the project (e.g. `git worktree add /tmp/base <commit>`): its
            # daemon runs from its own src/ (the runtime stays this venv's dockyard-runtime)
            src = Path(args[args.index("--baseline") + 1]).resolve() / "src"
            b = root / "base"
            b.mkdir()
            blog = open(b / "log", "wb")  # noqa: SIM115 - closed with the process
            bp = subprocess.Popen([sys.executable, "-c", "from dockyard.daemon.main import main; main()",
                                   "--host", f"unix://{b}/d.sock", "--data-root", str(b / "root"),
                                   "--exec-root", str(b / "exec")], stdout=blog, stderr=blog,
                                  env=dict(os.environ, PYTHONPATH=str(src)))
            procs.append(bp)
            wait_ping(b / "d.sock", bp)
            targets.append(Target("baseline", b / "d.sock", ctx, tar, classic=True))
        if "--dockerd" in args and shutil.which("dockerd"):
            r = root / "ref"
            r.mkdir()
            rlog = open(r / "log", "wb")  # noqa: SIM115
            q = subprocess.Popen(["dockerd", "--data-root", str(r / "root"), "--exec-root", str(r / "exec"),
                                  "-H", f"unix://{r}/d.sock", "--pidfile", str(r / "pid"), "--bridge", "none",
                                  "--iptables=false", "--containerd-namespace", "benchbuild",
                                  "--containerd-plugins-namespace", "benchbuildp"], stdout=rlog, stderr=rlog)
            procs.append(q)
            wait_ping(r / "d.sock", q)
            targets.append(Target("dockerd", r / "d.sock", ctx, tar, classic=True))
            if Path(BUILDKIT_CLIENT).exists():
                targets.append(Target("buildkit", r / "d.sock", ctx, tar, classic=False, docker=BUILDKIT_CLIENT))
        measure(targets, n)
    finally:
        for p in procs:
            stop(p, root)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
