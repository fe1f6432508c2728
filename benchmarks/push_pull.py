"""Push and pull of an image with one 200 MB random (incompressible) layer through the engine's
registry client (dockyard.distribution) to/from `dockyard registry serve` on loopback, with
`skopeo copy` side by side when it is installed. Prints MB/s (layer bytes / wall time).

    .venv/bin/python benchmarks/push_pull.py [--size-mb 200] [--repeat 3]

Needs root (the image store unpacks layers on overlay). Pull time includes unpacking, as a
`docker pull` does; skopeo's pull copies to a `dir:` and unpacks nothing. Everything lives in
a temporary directory that is removed at the end; the registry is terminated by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from pathlib import Path


def make_layer(path: Path, size: int) -> None:
    """A gzip'd tar holding one random file (level 1: random data doesn't compress anyway)."""
    raw = path.with_suffix(".raw")
    with open(raw, "wb") as f:
        left = size
        while left:
            n = min(left, 16 << 20)
            f.write(os.urandom(n))
            left -= n
    tar = path.with_suffix(".tar")
    with tarfile.open(tar, "w") as t:
        t.add(raw, arcname="blob.bin")
    raw.unlink()
    comp = zlib.compressobj(1, zlib.DEFLATED, 31)
    with open(tar, "rb") as src, open(path, "wb") as dst:
        while chunk := src.read(16 << 20):
            dst.write(comp.compress(chunk))
        dst.write(comp.flush())
    tar.unlink()


def start_registry(root: Path) -> tuple[subprocess.Popen[str], str]:
    p = subprocess.Popen([sys.executable, "-m", "dockyard.registry", "serve", "--addr", "127.0.0.1:0",
                          "--root", str(root)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert p.stdout is not None
    line = p.stdout.readline()
    if "listening on" not in line:
        raise SystemExit(f"registry did not start: {line!r}")
    return p, line.strip().rsplit("/", 1)[1]


def unmount_under(path: Path) -> None:
    from dockyard.snapshots import _mount

    with open("/proc/self/mountinfo") as f:
        mps = [line.split()[4] for line in f]
    for mp in sorted((m for m in mps if m.startswith(str(path))), reverse=True):
        _mount.umount(mp, _mount.MNT_DETACH)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from dockyard.distribution.pull import pull
    from dockyard.distribution.push import push
    from dockyard.distribution.service import Distribution
    from dockyard.images.service import ImageService

    tmp = Path(tempfile.mkdtemp(prefix="bench-pushpull-"))
    regs: list[subprocess.Popen[str]] = []
    stores: list[ImageService] = []
    try:
        layer = tmp / "layer.tar.gz"
        make_layer(layer, args.size_mb << 20)
        mb = layer.stat().st_size / 1e6
        src = ImageService(tmp / "src", snapshotter="overlay")
        stores.append(src)
        with open(layer, "rb") as f:
            image_id = src.import_tarball(f, repo_tag="bench:1")
        dist = Distribution()
        skopeo = shutil.which("skopeo")
        res: dict[str, list[float]] = {"dockyard push": [], "dockyard pull": [], "skopeo push": [],
                                       "skopeo pull": []}
        for i in range(args.repeat):
            # A fresh registry each round: nothing to skip or mount, every byte is sent.
            reg, host = start_registry(tmp / f"reg{i}")
            regs.append(reg)
            src.tag(image_id, f"{host}/bench/d{i}", "1")
            t = time.perf_counter()
            asyncio.run(push(dist, src, f"{host}/bench/d{i}:1"))
            res["dockyard push"].append(mb / (time.perf_counter() - t))
            dst = ImageService(tmp / f"dst{i}", snapshotter="overlay")
            stores.append(dst)
            t = time.perf_counter()
            asyncio.run(pull(dist, dst, f"{host}/bench/d{i}:1"))
            res["dockyard pull"].append(mb / (time.perf_counter() - t))
            if skopeo:
                out = tmp / f"sk{i}"
                t = time.perf_counter()
                subprocess.run([skopeo, "copy", "-q", "--src-tls-verify=false",
                                f"docker://{host}/bench/d{i}:1", f"dir:{out}"], check=True)
                res["skopeo pull"].append(mb / (time.perf_counter() - t))
                reg2, host2 = start_registry(tmp / f"sreg{i}")
                regs.append(reg2)
                t = time.perf_counter()
                subprocess.run([skopeo, "copy", "-q", "--dest-tls-verify=false", f"dir:{out}",
                                f"docker://{host2}/bench/s{i}:1"], check=True)
                res["skopeo push"].append(mb / (time.perf_counter() - t))
        print(f"layer: {mb:.0f} MB (gzip of random data), {args.repeat} runs, median MB/s")
        for k, v in res.items():
            if v:
                print(f"  {k:14s} {statistics.median(v):7.1f}   ({', '.join(f'{x:.0f}' for x in v)})")
    finally:
        for reg in regs:
            os.kill(reg.pid, signal.SIGTERM)
            reg.wait(timeout=30)
            if reg.stdout:
                reg.stdout.close()
        unmount_under(tmp)
        for s in stores:
            s.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
