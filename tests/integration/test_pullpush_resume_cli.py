"""``docker pull`` through a loopback TCP proxy that cuts the first layer download mid-blob.

The proxy sits between a private dockyardd and a real `dockyard registry serve`; the first
``GET .../blobs/<layer>`` (no Range) has its answer cut after 64 KiB and its connection
closed. The pull must complete: the daemon resumes with ``Range: bytes=N-`` (N > 0) and the
image runs. The proxy runs on its own event loop in a thread, stopped at teardown.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_support import DOCKER, Engine, make_image_tar, start_daemon, stop_engine

import registry_procs

pytestmark = pytest.mark.root

CUT_AFTER = 64 << 10


class CuttingProxy:
    def __init__(self, upstream: tuple[str, int], layer: str) -> None:
        self.upstream = upstream
        self.layer = layer
        self.cut_done = False
        self.ranges: list[str] = []
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        assert self._ready.wait(10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._conn, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self.loop.run_forever()
        finally:
            server.close()
            for t in asyncio.all_tasks(self.loop):
                t.cancel()
            self.loop.run_until_complete(asyncio.sleep(0))
            self.loop.close()

    async def _conn(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        ur, uw = await asyncio.open_connection(*self.upstream)
        doomed = asyncio.Event()  # set when this connection carries the request to cut

        async def up() -> None:
            while data := await cr.read(65536):
                text = data.decode("latin-1")
                if f"/blobs/{self.layer}" in text:
                    m = re.search(r"(?im)^range:\s*(\S+)", text)
                    if m:
                        self.ranges.append(m.group(1))
                    elif not self.cut_done:
                        self.cut_done = True
                        doomed.set()
                uw.write(data)
                await uw.drain()
            uw.close()

        async def down() -> None:
            sent = 0
            while data := await ur.read(65536):
                if doomed.is_set():
                    if sent + len(data) >= CUT_AFTER:
                        cw.write(data[:CUT_AFTER - sent])
                        await cw.drain()
                        cw.transport.abort()  # mid-blob: the client sees the connection drop
                        uw.close()
                        return
                    sent += len(data)
                cw.write(data)
                await cw.drain()
            cw.close()

        with contextlib.suppress(ConnectionError, OSError):
            await asyncio.gather(up(), down())


@pytest.fixture
def setup(busybox_rootfs: Path, tmp_path: Path) -> Iterator[tuple[Engine, str, subprocess.Popen[str]]]:
    if os.geteuid() != 0 or DOCKER is None:
        pytest.skip("needs root and the docker CLI")
    reg, line = registry_procs.spawn(tmp_path / "reg", tmp_path / "reg.log")
    root = Path(tempfile.mkdtemp(prefix="dyt-pp-", dir="/tmp"))
    eng: Engine | None = None
    try:
        eng = Engine(root, str(root / "d.sock"), start_daemon(root, str(root / "d.sock"), []), "default", [])
        # a layer big enough to be cut: busybox plus 1 MiB of incompressible bytes
        shutil.copytree(busybox_rootfs, root / "ctx", symlinks=True)
        (root / "ctx" / "blob").write_bytes(os.urandom(1 << 20))
        out = eng.docker("import", str(make_image_tar(root / "ctx", root / "big.tar")), "big:1")
        assert out.returncode == 0, out.stderr
        yield eng, line.rsplit("/", 1)[1], reg
    finally:
        if eng is not None:
            stop_engine(eng)
        else:
            shutil.rmtree(root, ignore_errors=True)
        registry_procs.stop([reg])


def _layer_digest(reghost: str, repo: str, tag: str) -> str:
    req = urllib.request.Request(f"http://{reghost}/v2/{repo}/manifests/{tag}", headers={
        "Accept": "application/vnd.oci.image.manifest.v1+json, "
                  "application/vnd.docker.distribution.manifest.v2+json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return str(json.loads(resp.read())["layers"][0]["digest"])


def test_pull_resumes_after_a_dropped_connection(setup: tuple[Engine, str, subprocess.Popen[str]]) -> None:
    eng, reghost, _ = setup
    assert eng.docker("tag", "big:1", f"{reghost}/big/app:1").returncode == 0
    r = eng.docker("push", f"{reghost}/big/app:1")
    assert r.returncode == 0, r.stderr
    host, port = reghost.split(":")
    proxy = CuttingProxy((host, int(port)), _layer_digest(reghost, "big/app", "1"))
    proxy.start()
    via = f"127.0.0.1:{proxy.port}"
    try:
        assert eng.docker("tag", "big:1", f"{via}/big/app:1").returncode == 0
        assert eng.docker("rmi", "big:1", f"{reghost}/big/app:1", f"{via}/big/app:1").returncode == 0
        assert eng.docker("images", "-q").stdout.strip() == b""
        r = eng.docker("pull", f"{via}/big/app:1", timeout=120)
        assert r.returncode == 0, r.stderr
        assert "Download complete" in r.stdout.decode() and "Pull complete" in r.stdout.decode()
    finally:
        proxy.stop()
    assert proxy.cut_done
    assert len(proxy.ranges) == 1 and re.fullmatch(r"bytes=[1-9]\d*-", proxy.ranges[0]), proxy.ranges
    r = eng.docker("run", "--rm", f"{via}/big/app:1", "wc", "-c", "/blob")
    assert r.returncode == 0 and r.stdout.decode().split()[0] == str(1 << 20), r
