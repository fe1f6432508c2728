"""Push and pull of an image with one 200 MB random (incompressible) layer.

Two parts, in the same run:

1. library: the engine's registry client (dockyard.distribution) to/from `dockyard registry
   serve` on loopback, with `skopeo copy` side by side when it is installed.
2. engines (``--engines``, default on): the real docker CLI against a private dockyardd and a
   private dockerd (Debian docker.io 20.10, own socket, data root, exec root, containerd
   namespace, no bridge, no iptables), each pushing/pulling the same layer (``docker import``
   of the same .tar.gz) to/from both registries: `dockyard registry serve` and Debian's
   Distribution 2.8 (`docker-registry`; taken from PATH, ``--distribution``, or fetched with
   `apt-get download docker-registry` + `dpkg -x` into the temp dir, never installed).
   Push = `docker push` wall time to a fresh repository; pull = `docker rmi` then `docker pull`
   wall time (download + unpack). dockerd keeps layers uncompressed and gzips on push.

    .venv/bin/python benchmarks/push_pull.py [--size-mb 200] [--repeat 3] [--no-engines]

Prints MB/s (layer bytes / wall time). Each timed step starts after ``sync``, so the writeback
of the previous step's 200+ MB of dirty pages is not timed in the next one (the library pull
runs right after making, importing and pushing the layer). Needs root. All traffic is on 127.0.0.1. Everything
lives in a temporary directory that is removed at the end; every process it started
(registries, daemons) is terminated by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import daemon_procs  # noqa: E402 - tests/daemon_procs.py: the one private-dockyardd start/stop
import registry_procs  # noqa: E402 - tests/registry_procs.py: the one `dockyard registry serve` start/stop


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
    """A ``dockyard registry serve`` on a free loopback port (tests/registry_procs.py); its host:port."""
    p, line = registry_procs.spawn(root, root.with_name(f"{root.name}.log"))
    return p, line.rsplit("/", 1)[1]


DISTRIBUTION_CONFIG = """version: 0.1
log: {{level: error}}
storage:
  filesystem: {{rootdirectory: {root}}}
  delete: {{enabled: true}}
http: {{addr: "127.0.0.1:{port}"}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def distribution_binary(tmp: Path, given: str | None) -> str | None:
    if given:
        return given
    found = shutil.which("docker-registry") or shutil.which("registry")
    if found:
        return found
    dl = tmp / "deb"
    dl.mkdir()
    if subprocess.run(["apt-get", "download", "docker-registry"], cwd=dl, capture_output=True).returncode:
        return None
    debs = list(dl.glob("docker-registry_*.deb"))
    if not debs:
        return None
    subprocess.run(["dpkg", "-x", str(debs[0]), str(dl / "x")], check=True)
    b = dl / "x" / "usr" / "bin" / "docker-registry"
    return str(b) if b.exists() else None


def start_distribution(binary: str, root: Path) -> tuple[subprocess.Popen[str], str]:
    root.mkdir(parents=True)
    port = free_port()
    cfg = root / "config.yml"
    cfg.write_text(DISTRIBUTION_CONFIG.format(root=root / "data", port=port))
    p = subprocess.Popen([binary, "serve", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         text=True)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return p, f"127.0.0.1:{port}"
        except OSError:
            if p.poll() is not None:
                raise SystemExit("docker-registry did not start") from None
            time.sleep(0.05)
    raise SystemExit("docker-registry did not listen")


def wait_docker(env: dict[str, str], proc: subprocess.Popen[bytes], what: str) -> None:
    for _ in range(600):
        if subprocess.run(["docker", "version"], env=env, capture_output=True).returncode == 0:
            return
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with status {proc.returncode}")
        time.sleep(0.05)
    raise SystemExit(f"{what} did not answer")


def start_dockyardd(d: Path) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    d.mkdir()
    return daemon_procs.spawn(d), daemon_procs.docker_env(d)


def start_dockerd(d: Path, insecure: list[str]) -> tuple[subprocess.Popen[bytes], dict[str, str]] | None:
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        return None
    d.mkdir()
    log = open(d / "log", "wb")  # noqa: SIM115 - closed with the process
    cmd = [dockerd, "--data-root", str(d / "root"), "--exec-root", str(d / "exec"), "-H", f"unix://{d}/d.sock",
           "--pidfile", str(d / "pid"), "--bridge", "none", "--iptables=false",
           "--containerd-namespace", "benchpp", "--containerd-plugins-namespace", "benchppp"]
    for r in insecure:
        cmd += ["--insecure-registry", r]
    p = subprocess.Popen(cmd, stdout=log, stderr=log)
    env = {**os.environ, "DOCKER_HOST": f"unix://{d}/d.sock"}
    wait_docker(env, p, "dockerd")
    return p, env


def stop(p: subprocess.Popen) -> None:  # type: ignore[type-arg]
    daemon_procs.stop_daemon(p, wait=60)


def docker(env: dict[str, str], *args: str) -> None:
    cp = subprocess.run(["docker", *args], env=env, capture_output=True, text=True)
    if cp.returncode != 0:
        raise SystemExit(f"docker {' '.join(args)}: {cp.stderr.strip()}")


def engine_round(env: dict[str, str], image: str, ref: str, mb: float) -> tuple[float, float]:
    """(push MB/s, pull MB/s) of ``image`` as ``ref`` (a fresh repository)."""
    docker(env, "tag", image, ref)
    os.sync()  # the previous step's writeback must not land in this one's time
    t = time.perf_counter()
    docker(env, "push", "-q", ref)
    push_rate = mb / (time.perf_counter() - t)
    docker(env, "rmi", image, ref)  # nothing left locally: the pull downloads and unpacks it all
    os.sync()  # the previous step's writeback must not land in this one's time
    t = time.perf_counter()
    docker(env, "pull", "-q", ref)
    pull_rate = mb / (time.perf_counter() - t)
    docker(env, "tag", ref, image)
    docker(env, "rmi", ref)
    return push_rate, pull_rate


def engines(tmp: Path, layer: Path, mb: float, repeat: int, distribution: str | None) -> dict[str, list[float]]:
    """docker CLI -> {dockyardd, dockerd} x {dockyard registry, Distribution}; see the docstring.

    Fresh registries every round: an engine that pushed a layer once remembers its digest and
    only mounts or HEADs it on a registry that has it (dockerd's 2nd push took 0.03 s)."""
    daemons_procs: list[tuple[subprocess.Popen, Path | None]] = []  # type: ignore[type-arg]
    res: dict[str, list[float]] = {}
    binary = distribution_binary(tmp, distribution)
    if not binary:
        print("  (Distribution not available: apt-get download docker-registry failed)")
    try:
        daemons: dict[str, dict[str, str]] = {}
        dy, env = start_dockyardd(tmp / "e-dockyardd")
        daemons_procs.append((dy, tmp / "e-dockyardd"))
        daemons["dockyardd"] = env
        # Loopback registries are insecure (plain http) by default in dockerd, as in dockyardd.
        ref = start_dockerd(tmp / "e-dockerd", ["127.0.0.0/8"])
        if ref is not None:
            daemons_procs.append((ref[0], None))
            daemons["dockerd"] = ref[1]
        else:
            print("  (dockerd not installed: apt-get install docker.io)")
        for env in daemons.values():
            docker(env, "import", str(layer), "bench:1")
        for i in range(repeat):
            regs: list[subprocess.Popen[str]] = []
            try:
                registries: dict[str, str] = {}
                for dname in daemons:
                    reg, host = start_registry(tmp / f"e-dyreg-{dname}{i}")
                    regs.append(reg)
                    registries[f"{dname}/dockyard registry"] = host
                    if binary:
                        dist, host = start_distribution(binary, tmp / f"e-dist-{dname}{i}")
                        regs.append(dist)
                        registries[f"{dname}/distribution"] = host
                for key, host in registries.items():
                    dname, rname = key.split("/", 1)
                    push_rate, pull_rate = engine_round(daemons[dname], "bench:1", f"{host}/b/r{i}:1", mb)
                    res.setdefault(f"{dname} push -> {rname}", []).append(push_rate)
                    res.setdefault(f"{dname} pull <- {rname}", []).append(pull_rate)
            finally:
                for reg in regs:
                    stop(reg)
    finally:
        for p, d in reversed(daemons_procs):
            if d is not None:
                daemon_procs.stop(d, p)
            else:
                stop(p)
    return res

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
    ap.add_argument("--no-engines", dest="engines", action="store_false",
                    help="only the library part (no dockyardd/dockerd through the docker CLI)")
    ap.add_argument("--distribution", help="path of Distribution's registry binary (docker-registry)")
    args = ap.parse_args()
    from dockyard.distribution.pull import pull
    from dockyard.distribution.push import push
    from dockyard.distribution.service import Distribution
    from dockyard.images.service import ImageService

    tmp = Path(tempfile.mkdtemp(prefix="bench-pushpull-", dir="/var/tmp"))
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
            os.sync()  # the previous step's writeback must not land in this one's time
            t = time.perf_counter()
            asyncio.run(push(dist, src, f"{host}/bench/d{i}:1"))
            res["dockyard push"].append(mb / (time.perf_counter() - t))
            dst = ImageService(tmp / f"dst{i}", snapshotter="overlay")
            stores.append(dst)
            os.sync()  # the previous step's writeback must not land in this one's time
            t = time.perf_counter()
            asyncio.run(pull(dist, dst, f"{host}/bench/d{i}:1"))
            res["dockyard pull"].append(mb / (time.perf_counter() - t))
            if skopeo:
                out = tmp / f"sk{i}"
                os.sync()  # the previous step's writeback must not land in this one's time
                t = time.perf_counter()
                subprocess.run([skopeo, "copy", "-q", "--src-tls-verify=false",
                                f"docker://{host}/bench/d{i}:1", f"dir:{out}"], check=True)
                res["skopeo pull"].append(mb / (time.perf_counter() - t))
                reg2, host2 = start_registry(tmp / f"sreg{i}")
                regs.append(reg2)
                os.sync()  # the previous step's writeback must not land in this one's time
                t = time.perf_counter()
                subprocess.run([skopeo, "copy", "-q", "--dest-tls-verify=false", f"dir:{out}",
                                f"docker://{host2}/bench/s{i}:1"], check=True)
                res["skopeo push"].append(mb / (time.perf_counter() - t))
        if args.engines:
            res.update(engines(tmp, layer, mb, args.repeat, args.distribution))
        print(f"layer: {mb:.0f} MB (gzip of random data), {args.repeat} runs, median MB/s")
        for k, v in res.items():
            if v:
                print(f"  {k:34s} {statistics.median(v):7.1f}   ({', '.join(f'{x:.0f}' for x in v)})")
    finally:
        registry_procs.stop(regs)
        unmount_under(tmp)
        for s in stores:
            s.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
