"""Throughput of the image store on one big layer: import (plain, gzip), save, load, export.

Run as root: ``.venv/bin/python benchmarks/image_io.py [--mb 200] [--files 2000]``.
Prints MB/s per operation (medians of --runs). Compare with PLATFORM-NOTES: docker save/load
78-110 / 114 MB/s, tarfile ~150 MB/s, tar(1) ~700 MB/s. The "disk" rows are the floor measured
in the same run on the same filesystem: ``dd`` of the layer tar with ``conv=fsync`` (what a
store that writes each byte once and syncs it costs) and ``tar -x`` of it (the same files
written by a C extractor, no hashing, no fsync). Everything lives in a temp dir that
is removed at the end, mounts included.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import statistics
import subprocess
import tempfile
import time
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


def timed(fn, *args) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def one_run(base: Path, run: int, tar: Path, gz: Path, snapshotter: str) -> dict[str, float]:
    """Each operation once, in fresh stores (a DiffID already unpacked would skip the work)."""
    r: dict[str, float] = {}
    stores = [ImageService(base / f"{n}{run}", snapshotter=snapshotter) for n in ("st", "gz", "ld")]
    svc, gzs, loader = stores
    try:
        with open(tar, "rb") as f:
            r["import tar"] = timed(lambda: svc.import_tarball(f, repo_tag="bench:plain"))
        with open(gz, "rb") as f:
            r["import tar.gz"] = timed(lambda: gzs.import_tarball(f, repo_tag="bench:gz"))
        out = base / f"save{run}.tar"
        with open(out, "wb") as f:
            r["save"] = timed(svc.save, ["bench:plain"], f)
        with open(out, "rb") as f:
            r["load"] = timed(loader.load, f)
        svc.prepare_rootfs(svc.resolve("bench:plain"), "c")
        with open(os.devnull, "wb") as f:
            r["export"] = timed(svc.export_rootfs, "c", f)
        svc.remove_rootfs("c")
        dd = base / f"dd{run}"
        r["disk: dd fsync"] = timed(lambda: subprocess.run(
            ["dd", f"if={tar}", f"of={dd}", "bs=1M", "conv=fsync"], check=True, capture_output=True))
        dd.unlink()
        x = base / f"x{run}"
        x.mkdir()
        r["disk: tar -x"] = timed(lambda: subprocess.run(["tar", "-C", str(x), "-xf", str(tar)], check=True))
        shutil.rmtree(x)
    finally:
        for s in stores:
            s.close()
    return r


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--snapshotter", default="auto")
    a = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="dockyard-bench-", dir="/var/tmp"))
    try:
        make_tree(base / "tree", a.mb, a.files)
        tar = base / "layer.tar"
        subprocess.run(["tar", "-C", str(base / "tree"), "-cf", str(tar), "."], check=True)
        gz = base / "layer.tar.gz"
        with open(tar, "rb") as src, gzip.open(gz, "wb", compresslevel=1) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        mb = tar.stat().st_size / (1 << 20)
        results: dict[str, list[float]] = {}
        for run in range(a.runs):
            for k, v in one_run(base, run, tar, gz, a.snapshotter).items():
                results.setdefault(k, []).append(v)
        print(f"layer: {mb:.0f} MB in {a.files} files, snapshotter {a.snapshotter}")
        for k, v in results.items():
            med = statistics.median(v)
            print(f"{k:15s} {med * 1000:8.0f} ms  {mb / med:7.0f} MB/s")
    finally:
        with open("/proc/self/mountinfo") as f:
            mps = [line.split()[4] for line in f if str(base) in line]
        for mp in sorted(mps, reverse=True):
            subprocess.run(["umount", "-l", mp], check=False)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
