"""Memory of the engine's processes per running container: the monitor's RSS (and the
daemon's) with 0 and N `sleep` containers, through the real docker CLI.

    .venv/bin/python benchmarks/engine_memory.py [-n 20]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=20)
    args = ap.parse_args()
    from conftest import make_busybox_rootfs

    tmp = Path(tempfile.mkdtemp(prefix="dym-", dir="/tmp"))
    sock = tmp / "d.sock"
    log = open(tmp / "daemon.log", "wb")  # noqa: SIM115
    daemon = subprocess.Popen([str(Path(sys.executable).parent / "dockyardd"), "--host", f"unix://{sock}",
                               "--data-root", str(tmp / "data"), "--exec-root", str(tmp / "exec")],
                              stdout=log, stderr=log)
    env = {**os.environ, "DOCKER_HOST": f"unix://{sock}"}
    mon_sock = tmp / "exec" / "monitor.sock"
    try:
        for _ in range(200):
            if subprocess.run(["docker", "version"], env=env, capture_output=True).returncode == 0:
                break
            time.sleep(0.05)
        make_busybox_rootfs(tmp / "bb")
        subprocess.run(["tar", "-C", str(tmp / "bb"), "-cf", str(tmp / "bb.tar"), "."], check=True)
        subprocess.run(["docker", "import", str(tmp / "bb.tar"), "busybox:latest"], env=env, check=True,
                       capture_output=True)
        subprocess.run(["docker", "run", "--rm", "--network", "none", "busybox", "true"], env=env, check=True)
        s = socket.socket(socket.AF_UNIX)
        s.connect(str(mon_sock))
        s.sendall(b'{"op":"ping"}\n')
        mon_pid = json.loads(s.makefile("rb").readline())["pid"]
        s.close()
        base_mon, base_d = rss_kb(mon_pid), rss_kb(daemon.pid)
        for _ in range(args.n):
            subprocess.run(["docker", "run", "-d", "--network", "none", "busybox", "sleep", "600"], env=env,
                           check=True, capture_output=True)
        mon, d = rss_kb(mon_pid), rss_kb(daemon.pid)
        print(f"monitor: {base_mon} kB idle, {mon} kB with {args.n} containers "
              f"-> {(mon - base_mon) / args.n:.1f} kB per container (containerd-shim: ~12900 kB each)")
        print(f"dockyardd: {base_d} kB -> {d} kB")
    finally:
        ids = subprocess.run(["docker", "ps", "-aq"], env=env, capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], env=env, capture_output=True)
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)
        if mon_sock.exists():
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(str(mon_sock))
                s.sendall(b'{"op":"shutdown","if_idle":false}\n')
                s.recv(100)
            except OSError:
                pass
            s.close()
        for line in reversed(open("/proc/mounts").read().splitlines()):
            if f" {tmp}" in line:
                subprocess.run(["umount", "-l", line.split()[1]], check=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
