"""Throughput of the image store on one big layer: import, save, load, export; and docker
load/save through the real docker CLI against a private dockyardd and a private dockerd.

Run as root: ``.venv/bin/python benchmarks/image_io.py [--mb 200] [--files 2000] [--runs 3]``.
Prints MB/s per operation (medians of --runs). The machine is shared and noisy: compare rows
of one run, never across runs.

In-process rows (``ImageService``, fresh stores each run, so nothing is skipped):

- ``load (ours)``: the archive ``save`` writes (config and manifest before the layer);
- ``load (docker order)``: the same blobs in ``docker save``'s order (layers first, then
  config, manifest, index.json, manifest.json), which used to take two passes.

Engine rows (``--no-engines`` skips them): ``docker load -i`` / ``docker save -o`` through the
docker CLI, against a private ``dockyardd`` and, when ``dockerd`` is installed (Debian
docker.io), a private ``dockerd`` on its own socket and roots, the same archive, alternating.
``--baseline REV`` adds a ``dockyardd`` as of git revision REV (a temporary worktree first on
PYTHONPATH): before/after figures from one run, since runs on this shared host differ by 2x.

Floor rows, the same file on the same filesystem in the same run: ``dd`` of the layer tar with
``conv=fsync`` (writing each byte once and syncing it), ``cat`` of it (page cache, no sync) and
``tar -x`` of it (the same files written by a C extractor: no hashing, no fsync), and two
copies then syncfs: a load writes each byte twice (the blob in the content store, the files in
the snapshot), hashes it, and syncs both before recording the image, so that is its floor.
Each operation starts after a sync(2). Everything lives in a temp dir removed at the end,
daemons stopped and mounts unmounted.

Paired rows (``--paired N`` rounds, 0 skips them): the disk here is shared and its speed
drifts by 2-3x within minutes, so a load is judged only against its FAIR FLOOR timed next to
it in the same round: what a C tool must do to land the same result durably, ``tar -x`` of
the layer (the 2000 files, into a directory marked ``chattr +T`` like a load's snapshot) +
``cat`` of it to a blob file + one ``sync -f``. It hashes nothing: a load must (sha256 of
every byte, ~0.15 s of CPU for 201 MB here). (Until session 3's H7 the floor extracted the
image ARCHIVE: one 201 MB file, not 2000, so it never paid what the loads paid for creating
2000 files in a churned block group, 0.3-0.8 s of kernel CPU, and that was most of the 4-5x
load/floor CPU ratios then reported; ``chattr +T`` now spares both.) Each round times
every subject (``load (in-process)``, ``docker load`` through the CLI against each engine)
right after or right before (alternating) its own floor, and the table shows the per-round
ratios load/floor (median and range) beside the median times. Before every timed step the
previous step's data is deleted (store, image, extracted tree) and the disk settled
(two sync(2): ext4 mounted with ``discard`` trims freed blocks at the journal commit that the
first one forces), so no step pays for an earlier one's writeback or trims.
"""

from __future__ import annotations

import argparse
import gzip
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from dockyard.images.service import ImageService


def make_tree(root: Path, total_mb: int, files: int) -> None:
    """``files`` files totalling ``total_mb`` (incompressible halves, like binaries)."""
    per = total_mb * (1 << 20) // files
    for i in range(files):
        d = root / f"d{i % 50}"
        d.mkdir(parents=True, exist_ok=True)
        with open(d / f"f{i}", "wb") as f:
            f.write(os.urandom(per // 2) + b"\0" * (per - per // 2))


def timed(fn: Callable[..., object], *args: object) -> float:
    # Every operation starts with nothing dirty: a store's syncfs would otherwise also wait for
    # the writes of the operation (or the other engine) before it.
    settle()
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def docker_order(src: Path, dst: Path) -> None:
    """``src`` (save's archive) rewritten in docker save's order: big blobs (layers) first."""
    with tarfile.open(src) as tf, tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as out:
        ms = tf.getmembers()
        layers = [m for m in ms if m.isreg() and m.size > (1 << 20)]
        rest = [m for m in ms if m not in layers]
        dirs = [m for m in rest if m.isdir()]
        for m in dirs + layers + [m for m in rest if not m.isdir()]:
            out.addfile(m, tf.extractfile(m) if m.isreg() else None)


def one_run(base: Path, run: int, tar: Path, gz: Path, snapshotter: str) -> dict[str, float]:
    """Each operation once, in fresh stores (a DiffID already unpacked would skip the work)."""
    r: dict[str, float] = {}
    names = ("st", "gz", "ld", "dl")
    stores = [ImageService(base / f"{n}{run}", snapshotter=snapshotter) for n in names]
    svc, gzs, loader, dloader = stores
    try:
        with open(tar, "rb") as f:
            r["import tar"] = timed(lambda: svc.import_tarball(f, repo_tag="bench:plain"))
        with open(gz, "rb") as f:
            r["import tar.gz"] = timed(lambda: gzs.import_tarball(f, repo_tag="bench:gz"))
        out = base / f"save{run}.tar"
        with open(out, "wb") as f:
            r["save"] = timed(svc.save, ["bench:plain"], f)
        with open(out, "rb") as f:
            r["load (ours)"] = timed(loader.load, f)
        dorder = base / f"dorder{run}.tar"
        docker_order(out, dorder)
        with open(dorder, "rb") as f:
            r["load (docker order)"] = timed(dloader.load, f)
        dorder.unlink()
        svc.prepare_rootfs(svc.resolve("bench:plain"), "c")
        with open(os.devnull, "wb") as f:
            r["export"] = timed(svc.export_rootfs, "c", f)
        svc.remove_rootfs("c")
        r.update(floors(base, tar, run))
    finally:
        for s in stores:
            s.close()
    return r


def floors(base: Path, tar: Path, run: int) -> dict[str, float]:
    r: dict[str, float] = {}
    dd = base / f"dd{run}"
    r["disk: dd fsync"] = timed(lambda: subprocess.run(
        ["dd", f"if={tar}", f"of={dd}", "bs=1M", "conv=fsync"], check=True, capture_output=True))
    dd.unlink()
    r["disk: cat"] = timed(lambda: subprocess.run(f"cat {tar} > {dd}", shell=True, check=True))
    dd.unlink()
    # What a durable load writes at least: the blob and the unpacked files, both synced.
    r["disk: 2 copies + sync"] = timed(lambda: subprocess.run(
        f"cat {tar} > {dd}; cat {tar} > {dd}2; sync -f {dd}", shell=True, check=True))
    dd.unlink()
    Path(f"{dd}2").unlink()
    x = base / f"x{run}"
    x.mkdir()
    r["disk: tar -x"] = timed(lambda: subprocess.run(["tar", "-C", str(x), "-xf", str(tar)], check=True))
    shutil.rmtree(x)
    return r


def settle() -> None:
    """Nothing of earlier steps left for the disk: dirty pages written, deletions committed
    and their discards (``discard`` mount option: issued at the journal commit) done."""
    os.sync()
    os.sync()


def cpu_children() -> float:
    """CPU seconds of every child waited for so far (tar, cat, sync, the docker CLI)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cpu_of(pid: int) -> float:
    """CPU seconds of process ``pid`` and of its children it has waited for."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def fair_floor(base: Path, src: Path) -> tuple[float, float]:
    """What landing ``src`` durably costs a C tool: extract it, write it as one blob file,
    one syncfs. (wall, CPU) seconds; the tree and the blob are deleted and the disk settled
    afterwards. The tree's directory gets ``chattr +T``, as a load's snapshot does (see
    diff/apply.py: on this journal-less ext4 a creation in a churned block group scans past
    every recently deleted inode), so both place the files alike."""
    d = base / "floor"
    (d / "fs").mkdir(parents=True)
    subprocess.run(["chattr", "+T", str(d / "fs")], check=False, capture_output=True)
    settle()
    c = cpu_children()
    t = time.perf_counter()
    subprocess.run(f"tar -C {d}/fs -xf {src} && cat {src} > {d}/blob && sync -f {d}", shell=True, check=True)
    t = time.perf_counter() - t
    c = cpu_children() - c
    shutil.rmtree(d)
    settle()
    return t, c


def inproc_load(base: Path, archive: Path, snapshotter: str) -> tuple[float, float]:
    """``ImageService.load`` of ``archive`` into a fresh store, which is removed afterwards.
    (wall, CPU) seconds, the CPU of this process and of the extractors."""
    root = base / "paired-store"
    svc = ImageService(root, snapshotter=snapshotter)
    try:
        settle()
        with open(archive, "rb") as f:
            c = cpu_self() + cpu_children()
            t = time.perf_counter()
            svc.load(f)
            t = time.perf_counter() - t
            c = cpu_self() + cpu_children() - c
    finally:
        svc.close()
        shutil.rmtree(root)
        settle()
    return t, c


def paired(base: Path, layer: Path, rounds: int, subjects: dict[str, Callable[[], tuple[float, float]]]) -> None:
    """Each subject timed next to its own fair floor in every round (the order of the two
    alternates by round and subject); prints the per-round ratios of wall time and of CPU
    time (the CPU a load needs is what it loses to other work on a busy host). ``layer``: the
    uncompressed layer tar the loaded image holds (the floor extracts and stores it)."""
    rows: dict[str, list[tuple[float, float, float, float]]] = {k: [] for k in subjects}
    for r in range(rounds):
        for i, (name, fn) in enumerate(subjects.items()):
            if (r + i) % 2 == 0:
                fl, flc = fair_floor(base, layer)
                t, c = fn()
            else:
                t, c = fn()
                fl, flc = fair_floor(base, layer)
            rows[name].append((t, fl, c, flc))
            print(f"  round {r}: {name:30s} {t * 1000:6.0f} ms  floor {fl * 1000:6.0f} ms  ratio {t / fl:5.2f}"
                  f"  cpu {c * 1000:5.0f} / {flc * 1000:4.0f} ms", flush=True)
    print("paired with the fair floor (tar -x + blob + sync -f), per-round ratios load/floor:")
    for name, rs in rows.items():
        wall = [t / fl for t, fl, _, _ in rs]
        cpu = [c / flc for _, _, c, flc in rs]
        print(f"{name:32s} wall {statistics.median(wall):5.2f} (range {min(wall):.2f}-{max(wall):.2f})  "
              f"cpu {statistics.median(cpu):5.2f}  "
              f"load {statistics.median(x[0] for x in rs) * 1000:6.0f} ms  "
              f"floor {statistics.median(x[1] for x in rs) * 1000:6.0f} ms  "
              f"cpu {statistics.median(x[2] for x in rs) * 1000:5.0f} / {statistics.median(x[3] for x in rs) * 1000:4.0f} ms")


class Engine:
    """A private daemon on its own socket and roots; ``docker`` CLI calls against it."""

    def __init__(self, name: str, cmd: list[str], root: Path, env: dict[str, str] | None = None) -> None:
        self.name, self.root = name, root
        root.mkdir(parents=True)
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{root}/d.sock"}
        self._log = open(root / "log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=self._log, env={**os.environ, **(env or {})})
        for _ in range(300):
            if self.docker("version", check=False).returncode == 0:
                return
            time.sleep(0.1)
        self.stop()
        raise SystemExit(f"{name} did not start; see {root}/log")

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        cp = subprocess.run(["docker", *args], env=self.env, capture_output=True)
        if check and cp.returncode != 0:
            raise SystemExit(f"{self.name}: docker {' '.join(args)}: {cp.stderr.decode().strip()}")
        return cp

    def load_save(self, archive: Path, out: Path) -> dict[str, float]:
        self.docker("rmi", "-f", "bench:plain", check=False)
        r = {f"docker load ({self.name})": timed(self.docker, "load", "-i", str(archive))}
        r[f"docker save ({self.name})"] = timed(self.docker, "save", "bench:plain", "-o", str(out))
        out.unlink()
        return r

    def timed_load(self, archive: Path) -> tuple[float, float]:
        """``docker load -i`` into an engine without the image; it is removed afterwards.
        (wall, CPU) seconds, the CPU of the CLI and of the daemon (with the children it
        waited for: extractors)."""
        self.docker("rmi", "-f", "bench:plain", check=False)
        settle()
        c = cpu_children() + cpu_of(self.proc.pid)
        t = time.perf_counter()
        self.docker("load", "-i", str(archive))
        t = time.perf_counter() - t
        c = cpu_children() + cpu_of(self.proc.pid) - c
        self.docker("rmi", "-f", "bench:plain")
        settle()
        return t, c

    def stop(self) -> None:
        mon = self.root / "exec" / "monitor.sock"
        if mon.exists():  # dockyardd's monitor outlives daemons by design: not this one
            import json
            import socket

            with socket.socket(socket.AF_UNIX) as s:
                try:
                    s.connect(str(mon))
                    s.sendall(json.dumps({"op": "shutdown", "if_idle": False}).encode() + b"\n")
                    s.recv(100)
                except OSError:
                    pass
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def engines(base: Path, archive: Path, runs: int, baseline: str | None = None, *, use_engines: bool = True,
            paired_rounds: int = 0, snapshotter: str = "auto", layer: Path | None = None) -> dict[str, list[float]]:
    """docker load/save through the CLI: private dockyardd, dockyardd as of git revision
    ``baseline`` (a worktree of it first on PYTHONPATH: before/after in one run) and (if
    installed) dockerd, ``runs`` times each; then ``paired_rounds`` rounds of :func:`paired`
    (the in-process load and each engine's ``docker load``, each next to its floor, which
    extracts and stores ``layer``: the archive's layer tar)."""
    started: list[Engine] = []
    results: dict[str, list[float]] = {}
    repo = Path(__file__).resolve().parent.parent
    tree = base / "baseline-src"
    try:
        if not use_engines:
            if paired_rounds:
                paired(base, layer or archive, paired_rounds, {"load (in-process)": lambda: inproc_load(base, archive, snapshotter)})
            return results
        ours = base / "eng-ours"
        started.append(Engine("dockyardd", [str(Path(sys.executable).parent / "dockyardd"), "--host",
                                            f"unix://{ours}/d.sock", "--data-root", str(ours / "data"),
                                            "--exec-root", str(ours / "exec")], ours))
        if baseline:
            subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(tree), baseline],
                           check=True, capture_output=True)
            old = base / "eng-base"
            started.append(Engine(f"dockyardd@{baseline[:10]}", [
                sys.executable, "-c", "from dockyard.daemon.main import main; main()", "--host",
                f"unix://{old}/d.sock", "--data-root", str(old / "data"), "--exec-root", str(old / "exec")],
                old, env={"PYTHONPATH": str(tree / "src")}))
        dockerd = shutil.which("dockerd")
        if dockerd:
            ref = base / "eng-ref"
            started.append(Engine("dockerd", [
                dockerd, "--data-root", str(ref / "root"), "--exec-root", str(ref / "exec"),
                "-H", f"unix://{ref}/d.sock", "--pidfile", str(ref / "pid"), "--bridge", "none",
                "--iptables=false", "--containerd-namespace", "benchio",
                "--containerd-plugins-namespace", "benchiop"], ref))
        for run in range(runs):
            for e in (started if run % 2 == 0 else started[::-1]):
                for k, v in e.load_save(archive, base / f"eng-save-{e.name}.tar").items():
                    results.setdefault(k, []).append(v)
        for e in started:
            e.docker("rmi", "-f", "bench:plain", check=False)
        if paired_rounds:
            subjects: dict[str, Callable[[], tuple[float, float]]] = {
                "load (in-process)": lambda: inproc_load(base, archive, snapshotter)}
            for e in started:
                subjects[f"docker load ({e.name})"] = lambda e=e: e.timed_load(archive)  # type: ignore[misc]
            paired(base, layer or archive, paired_rounds, subjects)
    finally:
        for e in started:
            e.stop()
        if tree.exists():
            subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(tree)], check=False)
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--snapshotter", default="auto")
    ap.add_argument("--no-engines", action="store_true", help="skip docker load/save through the CLI")
    ap.add_argument("--baseline", metavar="REV", help="also run dockyardd as of git revision REV (before/after)")
    ap.add_argument("--paired", type=int, default=5, metavar="N",
                    help="rounds of loads each timed next to its fair floor (0: none)")
    ap.add_argument("--paired-only", action="store_true", help="only the paired rows")
    a = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="dockyard-bench-", dir="/var/tmp"))
    try:
        make_tree(base / "tree", a.mb, a.files)
        tar = base / "layer.tar"
        subprocess.run(["tar", "-C", str(base / "tree"), "-cf", str(tar), "."], check=True)
        shutil.rmtree(base / "tree")
        gz = base / "layer.tar.gz"
        with open(tar, "rb") as src, gzip.open(gz, "wb", compresslevel=1) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        mb = tar.stat().st_size / (1 << 20)
        results: dict[str, list[float]] = {}
        for run in range(0 if a.paired_only else a.runs):
            for k, v in one_run(base, run, tar, gz, a.snapshotter).items():
                results.setdefault(k, []).append(v)
        archive = base / "archive.tar"
        svc = ImageService(base / "arch", snapshotter=a.snapshotter)
        try:
            with open(tar, "rb") as f:
                svc.import_tarball(f, repo_tag="bench:plain")
            with open(archive, "wb") as f:
                svc.save(["bench:plain"], f)
        finally:
            svc.close()
        shutil.rmtree(base / "arch")
        for k, v in engines(base, archive, 0 if a.paired_only else a.runs, a.baseline,
                            use_engines=not a.no_engines, paired_rounds=a.paired,
                            snapshotter=a.snapshotter, layer=tar).items():
            results[k] = v
        print(f"layer: {mb:.0f} MB in {a.files} files, snapshotter {a.snapshotter}, {a.runs} runs")
        for k, v in results.items():
            med = statistics.median(v)
            print(f"{k:26s} {med * 1000:8.0f} ms  {mb / med:7.0f} MB/s")
    finally:
        with open("/proc/self/mountinfo") as f:
            mps = [line.split()[4] for line in f if str(base) in line]
        for mp in sorted(mps, reverse=True):
            subprocess.run(["umount", "-l", mp], check=False)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
