"""`dockyard` against the docker CLI: wall time of one short command, alternating, medians.

Starts a private dockyardd (temp socket, data root and exec root), imports a one-binary
busybox image and creates a few containers so ``ps``/``images`` have rows to print, then times
each pair, taking turns which client goes first:

- ``--help``    no daemon contact: pure start-up
- ``version``   one GET /version
- ``ps -a``     one GET /containers/json, a formatted table
- ``images``    one GET /images/json, a formatted table
- ``inspect``   a GET that may fall through container -> image, printed as indented JSON
- ``run``       ``run --rm --network none bench /bin/busybox true``: create, attach, wait,
                start, stream, exit code (the engine's time dominates)

Prints medians (ms) and the ratio dockyard/docker. Needs root, busybox-static and `docker`.

Usage: .venv/bin/python benchmarks/cli_start.py [N]
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import daemon_procs  # noqa: E402 - tests/daemon_procs.py: the one private-dockyardd start/stop

BIN = Path(sys.executable).parent
DOCKYARD = str(BIN / "dockyard")


def timed(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return (time.perf_counter() - t0) * 1000


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    docker = shutil.which("docker")
    busybox = shutil.which("busybox")
    if not docker or not busybox:
        sys.exit("needs the docker CLI and busybox-static")
    root = Path(tempfile.mkdtemp(prefix="dy-clibench-"))
    daemon = None
    try:
        daemon = daemon_procs.spawn(root)
        env = daemon_procs.docker_env(root)
        with tarfile.open(root / "img.tar", "w") as tf:
            tf.add(busybox, arcname="bin/busybox")
        subprocess.run([DOCKYARD, "import", str(root / "img.tar"), "bench:latest"], env=env, check=True,
                       capture_output=True)
        for i in range(3):
            subprocess.run([DOCKYARD, "create", "--name", f"bench{i}", "bench", "/bin/busybox", "true"], env=env,
                           check=True, capture_output=True)
        cases = [["--help"], ["version"], ["ps", "-a"], ["images"], ["inspect", "bench0"],
                 ["run", "--rm", "--network", "none", "bench", "/bin/busybox", "true"]]
        print(f"{'command':<14}{'dockyard ms':>12}{'docker ms':>12}{'ratio':>8}")
        for args in cases:
            for warm in ([DOCKYARD, *args], [docker, *args]):
                timed(warm, env)
            ours, theirs = [], []
            for i in range(n):
                pair = [(ours, [DOCKYARD, *args]), (theirs, [docker, *args])]
                for bucket, argv in (pair if i % 2 == 0 else pair[::-1]):
                    bucket.append(timed(argv, env))
            a, b = statistics.median(ours), statistics.median(theirs)
            print(f"{' '.join(args)[:13]:<14}{a:>12.1f}{b:>12.1f}{a / b:>8.2f}")
    finally:
        daemon_procs.stop(root, daemon)


if __name__ == "__main__":
    main()
