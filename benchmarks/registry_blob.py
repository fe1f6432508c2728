"""Blob throughput of `dockyard registry serve` (and Distribution's `docker-registry`, if
installed): monolithic push (POST + PUT), chunked push (PATCH 16 MiB chunks + PUT) and GET of a
200 MB blob, over loopback. Prints MB/s side by side.

    .venv/bin/python benchmarks/registry_blob.py [--size-mb 200] [--repeat 3]

Everything runs under a temporary directory that is removed at the end; the servers are
started here and terminated by PID.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

CHUNK = 16 << 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def conn(port: int) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=300, blocksize=1 << 20)


def request(port: int, method: str, path: str, body: object = None,
            headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    c = conn(port)
    c.request(method, path, body=body, headers=headers or {})  # type: ignore[arg-type]
    r = c.getresponse()
    r.read()
    c.close()
    return r


def _path(loc: str) -> str:
    """Distribution answers absolute Locations, dockyard relative ones: keep path+query."""
    u = urlsplit(loc)
    return u.path + (f"?{u.query}" if u.query else "")


def push_monolithic(port: int, repo: str, blob: Path, digest: str) -> None:
    r = request(port, "POST", f"/v2/{repo}/blobs/uploads/")
    assert r.status == 202, r.status
    loc = _path(r.headers["Location"])
    sep = "&" if "?" in loc else "?"
    with open(blob, "rb") as f:
        r = request(port, "PUT", f"{loc}{sep}digest={digest}", f,
                    {"Content-Type": "application/octet-stream",
                     "Content-Length": str(blob.stat().st_size)})
    assert r.status == 201, r.status


def push_chunked(port: int, repo: str, blob: Path, digest: str) -> None:
    r = request(port, "POST", f"/v2/{repo}/blobs/uploads/")
    loc = _path(r.headers["Location"])
    size = blob.stat().st_size
    with open(blob, "rb") as f:
        off = 0
        while off < size:
            data = f.read(CHUNK)
            r = request(port, "PATCH", loc, data, {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{off}-{off + len(data) - 1}"})
            assert r.status == 202, r.status
            loc = _path(r.headers["Location"])
            off += len(data)
    sep = "&" if "?" in loc else "?"
    r = request(port, "PUT", f"{loc}{sep}digest={digest}", b"")
    assert r.status == 201, r.status


def get_blob(port: int, repo: str, digest: str, size: int) -> None:
    c = conn(port)
    c.request("GET", f"/v2/{repo}/blobs/{digest}")
    r = c.getresponse()
    assert r.status == 200, r.status
    n = 0
    while chunk := r.read(1 << 20):
        n += len(chunk)
    c.close()
    assert n == size


def wait_up(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if request(port, "GET", "/v2/").status == 200:
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server did not come up")


def start_dockyard(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "dockyard.registry", "serve", "--addr",
                             f"127.0.0.1:{port}", "--root", str(tmp / "dockyard")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_distribution(tmp: Path, port: int, exe: str | None) -> subprocess.Popen[bytes] | None:
    exe = exe or shutil.which("docker-registry")
    if exe is None:
        return None
    cfg = tmp / "distribution.yml"
    cfg.write_text(f"""version: 0.1
log: {{level: error}}
storage:
  filesystem: {{rootdirectory: {tmp / 'distribution'}}}
  delete: {{enabled: true}}
http: {{addr: 127.0.0.1:{port}}}
""")
    return subprocess.Popen([exe, "serve", str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def bench(port: int, blob: Path, digest: str, repeat: int) -> dict[str, float]:
    size = blob.stat().st_size
    best: dict[str, float] = {}
    for i in range(repeat):
        # Each push goes to a fresh repository; GET reads what the monolithic push stored.
        mono, chunk = f"bench/mono{i}", f"bench/chunk{i}"
        for label, fn in (
                ("push monolithic", lambda r=mono: push_monolithic(port, r, blob, digest)),
                ("push chunked", lambda r=chunk: push_chunked(port, r, blob, digest)),
                ("get", lambda r=mono: get_blob(port, r, digest, size))):
            t = time.perf_counter()
            fn()
            rate = size / (time.perf_counter() - t) / 1e6
            best[label] = max(best.get(label, 0.0), rate)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--distribution", default=None,
                    help="path of Distribution's registry binary (default: docker-registry on "
                         "PATH; e.g. from `apt-get download docker-registry` + `dpkg -x`)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="registry-bench-") as td:
        tmp = Path(td)
        blob = tmp / "blob"
        h = hashlib.sha256()
        with open(blob, "wb") as f:
            for _ in range(args.size_mb):
                chunk = os.urandom(1 << 20)
                h.update(chunk)
                f.write(chunk)
        digest = "sha256:" + h.hexdigest()
        results: dict[str, dict[str, float]] = {}
        starters = (("dockyard", lambda port: start_dockyard(tmp, port)),
                    ("distribution", lambda port: start_distribution(tmp, port, args.distribution)))
        for label, starter in starters:
            port = free_port()
            proc = starter(port)
            if proc is None:
                continue
            try:
                wait_up(port, proc)
                results[label] = bench(port, blob, digest, args.repeat)
            finally:
                os.kill(proc.pid, signal.SIGTERM)
                proc.wait()
        cols = list(results)
        print(f"blob {args.size_mb} MiB, best of {args.repeat}, MB/s")
        print(f"{'':18}" + "".join(f"{c:>14}" for c in cols))
        for row in ("push monolithic", "push chunked", "get"):
            print(f"{row:18}" + "".join(f"{results[c][row]:>14.0f}" for c in cols))
        if "distribution" not in results:
            print("(Distribution's docker-registry not found: pass --distribution PATH)")


if __name__ == "__main__":
    main()
