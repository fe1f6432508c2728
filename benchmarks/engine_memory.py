"""Memory of the engine's processes per running container: the monitor's RSS (and the
daemon's) with 0 and N `sleep` containers, through the real docker CLI.

    .venv/bin/python benchmarks/engine_memory.py [-n 20]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=20)
    args = ap.parse_args()
    import engine_run

    import daemon_procs

    tmp = Path(tempfile.mkdtemp(prefix="dym-", dir="/tmp"))
    daemon = daemon_procs.spawn(tmp)
    env = daemon_procs.docker_env(tmp)
    try:
        engine_run.import_busybox(tmp, env)
        subprocess.run(["docker", "run", "--rm", "--network", "none", "busybox", "true"], env=env, check=True)
        mon_pid = int(daemon_procs.monitor_request(tmp, {"op": "ping"})["pid"])
        base_mon, base_d = rss_kb(mon_pid), rss_kb(daemon.pid)
        for _ in range(args.n):
            subprocess.run(["docker", "run", "-d", "--network", "none", "busybox", "sleep", "600"], env=env,
                           check=True, capture_output=True)
        mon, d = rss_kb(mon_pid), rss_kb(daemon.pid)
        print(f"monitor: {base_mon} kB idle, {mon} kB with {args.n} containers "
              f"-> {(mon - base_mon) / args.n:.1f} kB per container (containerd-shim: ~12900 kB each)")
        print(f"dockyardd: {base_d} kB -> {d} kB")
    finally:
        daemon_procs.stop(tmp, daemon)


if __name__ == "__main__":
    main()
