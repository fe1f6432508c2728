"""What networking costs a user, through the real docker CLI and a private dockyardd.

Side by side, medians of N (alternating variants so drift hits both):

1. start: ``docker run --rm busybox true`` on the default bridge vs ``--network none``
   (target: networking adds < 10 ms);
2. a published port vs the container's own address: per-request latency of a small HTTP
   GET (new TCP connection each, busybox httpd) and throughput of a 64 MiB download, via
   ``127.0.0.1:<published>`` (nft DNAT, route_localnet) and via ``<container ip>:80`` (bridge);
3. embedded DNS: an A lookup of a container name on 127.0.0.11 from inside a container's
   namespace, next to a plain UDP round trip from the same namespace to an echo server on
   the bridge gateway (the floor any resolver on the host side pays).

Usage (root): .venv/bin/python benchmarks/network_engine.py [-n 20]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import daemon_procs  # noqa: E402 - tests/daemon_procs.py: the one private-dockyardd start/stop

# Runs inside the container's namespace (nsenter --net): N DNS queries to 127.0.0.11 for
# argv[2], then N UDP round trips to an echo server at argv[3]:argv[4]; prints both lists (ms).
PROBE = r"""
import json, socket, struct, sys, time
n, name, echo_ip, echo_port = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
def query(qid):
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for part in name.split("."):
        q += bytes([len(part)]) + part.encode()
    return q + b"\x00" + struct.pack("!HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
dns, udp = [], []
for i in range(n + 3):
    t = time.perf_counter(); s.sendto(query(i), ("127.0.0.11", 53)); r = s.recv(512)
    dt = (time.perf_counter() - t) * 1000
    assert struct.unpack("!H", r[6:8])[0] >= 1, "no answer"
    if i >= 3: dns.append(dt)
for i in range(n + 3):
    t = time.perf_counter(); s.sendto(b"x" * 40, (echo_ip, echo_port)); s.recv(512)
    dt = (time.perf_counter() - t) * 1000
    if i >= 3: udp.append(dt)
print(json.dumps({"dns": dns, "udp": udp}))
"""


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def docker(env: dict[str, str], *args: str) -> str:
    cp = subprocess.run(["docker", *args], env=env, capture_output=True, text=True)
    if cp.returncode != 0:
        raise SystemExit(f"docker {' '.join(args)} failed: {cp.stderr}")
    return cp.stdout


def http_get(addr: tuple[str, int], path: str) -> int:
    with socket.create_connection(addr, timeout=10) as c:
        c.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
        total = 0
        while True:
            b = c.recv(1 << 20)
            if not b:
                return total
            total += len(b)


def bench_start(env: dict[str, str], n: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"bridge": [], "none": []}
    for i in range(n + 2):
        order = [("bridge", ()), ("none", ("--network", "none"))]
        for label, extra in (order if i % 2 else order[::-1]):
            t = time.perf_counter()
            docker(env, "run", "--rm", *extra, "busybox", "true")
            if i >= 2:  # warm-up
                out[label].append((time.perf_counter() - t) * 1000)
    return out


def bench_port(env: dict[str, str], n: int) -> dict[str, list[float]]:
    port = free_port()
    docker(env, "run", "-d", "--name", "bench-web", "-p", f"127.0.0.1:{port}:80", "busybox",
           "sh", "-c", "echo hi > /var/www/small; dd if=/dev/zero of=/var/www/big bs=1M count=64 2>/dev/null;"
           " exec httpd -f -p 80 -h /var/www")
    ip = json.loads(docker(env, "inspect", "bench-web"))[0]["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    via = {"published": ("127.0.0.1", port), "direct": (ip, 80)}
    for _ in range(100):
        try:
            if http_get(via["direct"], "/big") > 64 << 20:
                break
        except OSError:
            pass
        time.sleep(0.1)
    out: dict[str, list[float]] = {}
    for i in range(n + 3):
        for label, addr in (via.items() if i % 2 else list(via.items())[::-1]):
            t = time.perf_counter()
            http_get(addr, "/small")
            if i >= 3:
                out.setdefault(f"{label} req ms", []).append((time.perf_counter() - t) * 1000)
    for i in range(max(3, n // 4)):
        for label, addr in (via.items() if i % 2 else list(via.items())[::-1]):
            t = time.perf_counter()
            size = http_get(addr, "/big")
            out.setdefault(f"{label} MB/s", []).append(size / (1 << 20) / (time.perf_counter() - t))
    docker(env, "rm", "-f", "bench-web")
    return out


def bench_dns(env: dict[str, str], n: int) -> dict[str, list[float]]:
    docker(env, "run", "-d", "--name", "bench-target", "busybox", "sleep", "600")
    docker(env, "run", "-d", "--name", "bench-asker", "busybox", "sleep", "600")
    info = json.loads(docker(env, "inspect", "bench-asker"))[0]
    gw = info["NetworkSettings"]["Networks"]["bridge"]["Gateway"]
    echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    echo.bind((gw, 0))
    stop = threading.Event()

    def serve() -> None:
        echo.settimeout(0.2)
        while not stop.is_set():
            try:
                data, peer = echo.recvfrom(512)
                echo.sendto(data, peer)
            except OSError:
                pass
    th = threading.Thread(target=serve, daemon=True)
    th.start()
    try:
        cp = subprocess.run(["nsenter", f"--net={info['NetworkSettings']['SandboxKey']}", sys.executable,
                             "-c", PROBE, str(n * 10), "bench-target", gw, str(echo.getsockname()[1])],
                            capture_output=True, text=True, timeout=120)
        if cp.returncode != 0:
            raise SystemExit(f"DNS probe failed: {cp.stderr}")
        r = json.loads(cp.stdout)
        return {"embedded DNS A lookup": r["dns"], "UDP round trip to the gateway": r["udp"]}
    finally:
        stop.set()
        th.join()
        echo.close()
        docker(env, "rm", "-f", "bench-target", "bench-asker")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=20)
    n = ap.parse_args().n
    from conftest import make_busybox_rootfs

    root = Path(tempfile.mkdtemp(prefix="bench-net-", dir="/tmp"))
    proc = None
    try:
        rootfs = make_busybox_rootfs(root / "rootfs")
        with tarfile.open(root / "bb.tar", "w") as tf:
            tf.add(rootfs, arcname=".")
        proc = daemon_procs.spawn(root, "--network-instance", "bn")
        env = daemon_procs.docker_env(root)
        docker(env, "import", str(root / "bb.tar"), "busybox:latest")
        start = bench_start(env, n)
        print(f"docker run --rm busybox true (N={n}, median ms):")
        print(f"  default bridge {med(start['bridge']):7.1f}   --network none {med(start['none']):7.1f}"
              f"   networking adds {med(start['bridge']) - med(start['none']):6.1f}")
        port = bench_port(env, n)
        print("published port (127.0.0.1:P -> DNAT) vs the container's address (median):")
        print(f"  HTTP GET, new connection: published {med(port['published req ms']):6.2f} ms"
              f"   direct {med(port['direct req ms']):6.2f} ms")
        print(f"  64 MiB download:          published {med(port['published MB/s']):6.0f} MB/s"
              f"  direct {med(port['direct MB/s']):6.0f} MB/s")
        d = bench_dns(env, n)
        print("from inside a container's namespace (median ms):")
        for k, v in d.items():
            print(f"  {k:32s} {med(v):6.3f}   (p90 {sorted(v)[int(len(v) * 0.9)]:6.3f}, N={len(v)})")
    finally:
        daemon_procs.stop(root, proc)


if __name__ == "__main__":
    main()
