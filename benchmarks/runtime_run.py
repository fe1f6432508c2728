"""dockyard-runtime against runc on the same busybox bundle running /bin/true, alternating.

Two scenarios, each timed per iteration with the runtimes taking turns (which one goes first
alternates, as in the acceptance script):

- ``run``        ``<rt> run -b B id`` (wall time, what the acceptance script measures); the
                 following ``delete -f`` is not timed
- ``lifecycle``  ``create`` + ``start`` + wait for the process to exit + ``delete`` (this
                 script is a child subreaper, so it reaps the container's process itself)
- ``seccomp``    ``run`` again with Docker's default seccomp profile in the bundle (what the
                 engine passes for every container), when the profile file is available

Prints the medians (ms) and the ratio ours/runc for each. Needs root, runc and busybox-static.

Usage: .venv/bin/python benchmarks/runtime_run.py [N] [--runtime PATH]
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dockyard.linux import syscalls


def make_bundle(root: Path) -> Path:
    bb = shutil.which("busybox")
    if bb is None:
        sys.exit("busybox-static is needed")
    bundle = root / "bundle"
    rootfs = bundle / "rootfs"
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp"):
        (rootfs / d).mkdir(parents=True)
    for applet in subprocess.run([bb, "--list"], capture_output=True, text=True).stdout.split():
        (rootfs / "bin" / applet).symlink_to("busybox")
    if (rootfs / "bin" / "busybox").is_symlink():
        (rootfs / "bin" / "busybox").unlink()
    shutil.copy2(bb, rootfs / "bin" / "busybox")
    subprocess.run(["runc", "spec"], cwd=bundle, check=True)
    cfg = json.loads((bundle / "config.json").read_text())
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["/bin/true"]
    (bundle / "config.json").write_text(json.dumps(cfg))
    return bundle


DOCKER_PROFILE = Path(__file__).resolve().parents[2] / "shared/specs/docker/seccomp-default.json"


def seccomp_bundle(root: Path, bundle: Path) -> Path | None:
    """A copy of ``bundle`` whose config carries Docker's profile in OCI form."""
    if not DOCKER_PROFILE.exists():
        return None
    prof = json.loads(DOCKER_PROFILE.read_text())
    prof.pop("archMap", None)
    prof["architectures"] = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    for rule in prof["syscalls"]:  # Docker resolves these per container; keep the rules
        for k in ("includes", "excludes", "comment"):
            rule.pop(k, None)
    out = root / "bundle-seccomp"
    out.mkdir()
    cfg = json.loads((bundle / "config.json").read_text())
    cfg["root"]["path"] = str(bundle / "rootfs")  # runc refuses a symlinked rootfs
    cfg["linux"]["seccomp"] = prof
    (out / "config.json").write_text(json.dumps(cfg))
    return out


def ms(a: float, b: float) -> float:
    return (b - a) * 1000


def quiet(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def time_run(rt: str, state: Path, bundle: Path, cid: str) -> float:
    a = time.perf_counter()
    quiet(rt, "--root", str(state), "run", "-b", str(bundle), cid)
    b = time.perf_counter()
    quiet(rt, "--root", str(state), "delete", "-f", cid)
    return ms(a, b)


def time_lifecycle(rt: str, state: Path, bundle: Path, cid: str) -> float:
    a = time.perf_counter()
    quiet(rt, "--root", str(state), "create", "-b", str(bundle), cid)
    pid = json.loads(subprocess.run([rt, "--root", str(state), "state", cid],
                                    capture_output=True).stdout or b"{}").get("pid", 0)
    quiet(rt, "--root", str(state), "start", cid)
    if pid:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    quiet(rt, "--root", str(state), "delete", cid)
    return ms(a, time.perf_counter())


def main() -> None:
    args = sys.argv[1:]
    ours = str(Path(sys.executable).parent / "dockyard-runtime")
    if "--runtime" in args:
        i = args.index("--runtime")
        ours = args[i + 1]
        del args[i:i + 2]
    n = int(args[0]) if args else 21
    if shutil.which("runc") is None:
        sys.exit("runc is needed for the comparison")
    syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1)
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        root = Path(tmp)
        bundle = make_bundle(root)
        scenarios = [("run", time_run, bundle), ("lifecycle", time_lifecycle, bundle)]
        sbundle = seccomp_bundle(root, bundle)
        if sbundle is not None:
            scenarios.append(("seccomp", time_run, sbundle))
        for name, fn, b in scenarios:
            times: dict[str, list[float]] = {"dockyard-runtime": [], "runc": []}
            for i in range(n):
                order = [("dockyard-runtime", ours), ("runc", "runc")]
                if i % 2:
                    order.reverse()
                for label, rt in order:
                    times[label].append(fn(rt, root / label, b, f"b{i}"))
            mo = statistics.median(times["dockyard-runtime"])
            mr = statistics.median(times["runc"])
            print(f"{name:10s} dockyard-runtime {mo:6.1f} ms   runc {mr:6.1f} ms   "
                  f"ratio {mo / mr:.2f}")


if __name__ == "__main__":
    main()
