"""Time `docker run --rm --network none busybox true` end to end through the real docker CLI.

Starts a private dockyardd (temp socket, data root, exec root), imports a busybox image made
from busybox-static, and times N runs (after warm-up); if a dockerd answers on
/var/run/docker.sock with a busybox image, times it the same way, alternating. Prints medians.

    .venv/bin/python benchmarks/engine_run.py [-n 20] [--runtime dockyard-runtime|runc]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import daemon_procs  # noqa: E402 - tests/daemon_procs.py: the one private-dockyardd start/stop


def timed(env: dict[str, str]) -> float:
    t = time.perf_counter()
    cp = subprocess.run(["docker", "run", "--rm", "--network", "none", "busybox", "true"], env=env,
                        capture_output=True)
    dt = time.perf_counter() - t
    if cp.returncode != 0:
        raise SystemExit(f"docker run failed: {cp.stderr.decode()}")
    return dt * 1000


REF: list[subprocess.Popen[bytes]] = []


def start_reference(tmp: Path, env: dict[str, str]) -> tuple[dict[str, str], bool]:
    """A private dockerd (Debian docker.io) on its own socket and roots, if installed: the same
    flags as the engine-speed acceptance script. Falls back to a running /var/run/docker.sock."""
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        ref_env = {**os.environ, "DOCKER_HOST": "unix:///var/run/docker.sock"}
        ok = os.path.exists("/var/run/docker.sock") and subprocess.run(
            ["docker", "image", "inspect", "busybox"], env=ref_env, capture_output=True).returncode == 0
        return ref_env, ok
    d2 = tmp / "ref"
    d2.mkdir()
    log = open(d2 / "log", "wb")  # noqa: SIM115
    REF.append(subprocess.Popen([dockerd, "--data-root", str(d2 / "root"), "--exec-root", str(d2 / "exec"),
                                 "-H", f"unix://{d2}/d.sock", "--pidfile", str(d2 / "pid"), "--bridge", "none",
                                 "--iptables=false", "--containerd-namespace", "benchref",
                                 "--containerd-plugins-namespace", "benchrefp"], stdout=log, stderr=log))
    ref_env = {**os.environ, "DOCKER_HOST": f"unix://{d2}/d.sock"}
    for _ in range(200):
        if subprocess.run(["docker", "version"], env=ref_env, capture_output=True).returncode == 0:
            break
        time.sleep(0.1)
    ok = subprocess.run(["docker", "import", str(tmp / "bb.tar"), "busybox:latest"], env=ref_env,
                        capture_output=True).returncode == 0
    if ok:
        for _ in range(2):
            timed(ref_env)
    return ref_env, ok


def stop_reference(tmp: Path) -> None:
    for p in REF:
        daemon_procs.stop_daemon(p, wait=30)


def import_busybox(tmp: Path, env: dict[str, str]) -> None:
    """``busybox:latest`` from busybox-static (tests/conftest.py's rootfs), through docker import."""
    from conftest import make_busybox_rootfs

    make_busybox_rootfs(tmp / "bb")
    subprocess.run(["tar", "-C", str(tmp / "bb"), "-cf", str(tmp / "bb.tar"), "."], check=True)
    subprocess.run(["docker", "import", str(tmp / "bb.tar"), "busybox:latest"], env=env, check=True,
                   capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=20)
    ap.add_argument("--runtime", default=None)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dyb-", dir="/tmp"))
    daemon = daemon_procs.spawn(tmp, *(["--default-runtime", args.runtime] if args.runtime else []))
    env = daemon_procs.docker_env(tmp)
    try:
        import_busybox(tmp, env)
        ref_env, have_ref = start_reference(tmp, env)
        for _ in range(3):
            timed(env)
        ours, ref = [], []
        for _ in range(args.n):
            ours.append(timed(env))
            if have_ref:
                ref.append(timed(ref_env))
        print(f"dockyardd ({args.runtime or 'default runtime'}): median {statistics.median(ours):.1f} ms, "
              f"min {min(ours):.1f} ms over {args.n} runs")
        if ref:
            r = statistics.median(ref)
            print(f"dockerd: median {r:.1f} ms; ratio {statistics.median(ours) / r:.2f}")
        else:
            print("dockerd: not available (apt-get install docker.io); PLATFORM-NOTES: ~290-340 ms")
    finally:
        stop_reference(tmp)
        daemon_procs.stop(tmp, daemon)


if __name__ == "__main__":
    main()
