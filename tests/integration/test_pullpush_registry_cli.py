"""The docker CLI against a private dockyardd and `dockyard registry serve` (issue 5, engine side).

* a registry on an address that is not loopback (a /32 on a bridge this module creates) and
  speaks plain http is refused with dockerd's message, unless ``--insecure-registry`` lists it;
* a TLS registry signed by a private CA is refused ("certificate signed by unknown
  authority") until the CA is dropped at ``/etc/docker/certs.d/<host:port>/ca.crt``, the
  path dockerd reads (removed again by the test);
* a zstd-compressed layer (`docker import` of a .tar.zst) is pushed as such, pulled and run;
* ``docker build`` FROM an image on an auth-protected registry: the missing base is pulled
  with the credentials of ``X-Registry-Config`` (what the CLI sends from its config.json).

Every registry process, daemon, bridge and certs.d entry made here is removed at teardown.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from engine_support import DOCKER, Engine, make_image_tar, start_daemon, stop_engine

import registry_procs

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")]


@pytest.fixture(scope="module")
def bridge_ip() -> Iterator[str]:
    """A non-loopback address of this host: a /32 on a bridge of our own (no traffic leaves)."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    name = f"dyh5{os.getpid() % 100000:05d}"
    ip = f"10.251.{os.getpid() % 200 + 20}.1"
    subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", f"{ip}/32", "dev", name], check=True)
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
        yield ip
    finally:
        subprocess.run(["ip", "link", "del", name], check=False)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """``start(addr_host, *flags)`` -> ``host:port`` of a `dockyard registry serve`."""
    procs: list[subprocess.Popen[str]] = []

    def start(bind: str, *flags: str) -> str:
        n = len(procs) + 1
        p, line = registry_procs.spawn(tmp_path / f"reg{n}", tmp_path / f"reg{n}.log", *flags, addr=f"{bind}:0")
        procs.append(p)
        return line.rsplit("/", 1)[1]

    yield start
    registry_procs.stop(procs)


@pytest.fixture
def daemon(busybox_rootfs: Path, tmp_path: Path) -> Iterator[Callable[..., Engine]]:
    """``start(*dockyardd_flags)`` -> a private dockyardd with busybox:latest imported."""
    if DOCKER is None:
        pytest.skip("no docker CLI")
    engines: list[Engine] = []
    (tmp_path / "dockercfg").mkdir()

    def start(*args: str) -> Engine:
        root = Path(tempfile.mkdtemp(prefix="dyt-pp-", dir="/tmp"))
        eng = Engine(root, str(root / "d.sock"), start_daemon(root, str(root / "d.sock"), list(args)),
                     "default", list(args))
        engines.append(eng)
        out = eng.docker("import", str(make_image_tar(busybox_rootfs, root / "bb.tar")), "busybox:latest")
        assert out.returncode == 0, out.stderr
        return eng

    old = os.environ.get("DOCKER_CONFIG")
    os.environ["DOCKER_CONFIG"] = str(tmp_path / "dockercfg")  # docker login writes here only
    try:
        yield start
    finally:
        if old is None:
            os.environ.pop("DOCKER_CONFIG", None)
        else:
            os.environ["DOCKER_CONFIG"] = old
        for e in engines:
            stop_engine(e)


def _text(r: subprocess.CompletedProcess[bytes]) -> str:
    return (r.stdout + r.stderr).decode(errors="replace")


def test_plain_http_registry_needs_insecure_registry(bridge_ip: str, registry: Callable[..., str],
                                                     daemon: Callable[..., Engine]) -> None:
    host = registry(bridge_ip)
    strict = daemon()
    assert strict.docker("tag", "busybox", f"{host}/team/app:1").returncode == 0
    r = strict.docker("push", f"{host}/team/app:1")
    assert r.returncode != 0
    assert f'Get "https://{host}/v2/": http: server gave HTTP response to HTTPS client' in _text(r), _text(r)
    r = strict.docker("pull", f"{host}/team/app:1")
    assert r.returncode != 0 and "server gave HTTP response to HTTPS client" in _text(r), _text(r)

    listed = daemon("--insecure-registry", host)
    assert listed.docker("tag", "busybox", f"{host}/team/app:1").returncode == 0
    r = listed.docker("push", f"{host}/team/app:1")
    assert r.returncode == 0 and "1: digest: sha256:" in _text(r), _text(r)
    assert listed.docker("rmi", f"{host}/team/app:1", "busybox").returncode == 0
    r = listed.docker("pull", f"{host}/team/app:1")
    assert r.returncode == 0 and f"Status: Downloaded newer image for {host}/team/app:1" in _text(r), _text(r)
    r = listed.docker("run", "--rm", f"{host}/team/app:1", "echo", "pulled-over-http")
    assert r.returncode == 0 and r.stdout.decode().strip() == "pulled-over-http", _text(r)
    # pulled again: the image is here, dockerd prints no layer lines
    r = listed.docker("pull", f"{host}/team/app:1")
    assert r.returncode == 0 and f"Status: Image is up to date for {host}/team/app:1" in _text(r), _text(r)
    assert "Already exists" not in _text(r) and "Pull complete" not in _text(r), _text(r)


def _ca_and_cert(d: Path, ip: str) -> tuple[Path, Path, Path]:
    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    ca, ca_key, crt, key, csr, ext = (d / n for n in ("ca.crt", "ca.key", "srv.crt", "srv.key", "srv.csr", "ext"))
    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=dockyard test CA",
        "-keyout", str(ca_key), "-out", str(ca))
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={ip}", "-keyout", str(key), "-out", str(csr))
    ext.write_text(f"subjectAltName=IP:{ip}\n")
    ssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-days", "1", "-extfile", str(ext), "-out", str(crt))
    return ca, crt, key


@contextlib.contextmanager
def _certs_d_entry(host: str, ca: Path) -> Iterator[Path]:
    """/etc/docker/certs.d/<host>/ca.crt for the duration; removed after (and the parents we made)."""
    base = Path("/etc/docker/certs.d")
    made = [p for p in (base.parent, base) if not p.exists()]
    d = base / host
    assert not d.exists(), f"{d} exists already"
    d.mkdir(parents=True)
    try:
        shutil.copy(ca, d / "ca.crt")
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)
        for p in reversed(made):
            with contextlib.suppress(OSError):
                p.rmdir()


def test_tls_registry_trusted_through_certs_d(tmp_path: Path, bridge_ip: str, registry: Callable[..., str],
                                              daemon: Callable[..., Engine]) -> None:
    ca, crt, key = _ca_and_cert(tmp_path, bridge_ip)
    host = registry(bridge_ip, "--tls-cert", str(crt), "--tls-key", str(key))
    eng = daemon()
    assert eng.docker("tag", "busybox", f"{host}/tls/app:1").returncode == 0
    r = eng.docker("push", f"{host}/tls/app:1")
    assert r.returncode != 0 and "x509: certificate signed by unknown authority" in _text(r), _text(r)

    with _certs_d_entry(host, ca):
        r = eng.docker("push", f"{host}/tls/app:1")
        assert r.returncode == 0 and "1: digest: sha256:" in _text(r), _text(r)
        assert eng.docker("rmi", f"{host}/tls/app:1").returncode == 0
        r = eng.docker("pull", f"{host}/tls/app:1")
        assert r.returncode == 0 and "Digest: sha256:" in _text(r), _text(r)
    assert not (Path("/etc/docker/certs.d") / host).exists()
    # the CA gone, it is refused again (read per operation, as dockerd)
    r = eng.docker("pull", f"{host}/tls/app:1")
    assert r.returncode != 0 and "certificate signed by unknown authority" in _text(r), _text(r)


def test_build_pulls_base_from_auth_registry(tmp_path: Path, registry: Callable[..., str],
                                             daemon: Callable[..., Engine]) -> None:
    from dockyard.registry.htpasswd import hash_password

    ht = tmp_path / "htpasswd"
    ht.write_text(f"alice:{hash_password('wonder', rounds=4)}\n")
    host = registry("127.0.0.1", "--htpasswd", str(ht), "--auth", "token")
    eng = daemon()
    r = eng.docker("login", host, "-u", "alice", "--password-stdin", input=b"wonder\n")
    assert r.returncode == 0, _text(r)
    assert eng.docker("tag", "busybox", f"{host}/base/bb:1").returncode == 0
    assert eng.docker("push", f"{host}/base/bb:1").returncode == 0
    assert eng.docker("rmi", f"{host}/base/bb:1", "busybox").returncode == 0
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {host}/base/bb:1\nRUN echo built > /b\n")

    r = eng.docker("build", "-t", "authbuilt", str(ctx), timeout=120)
    out = _text(r)
    assert r.returncode == 0, out
    assert f"Status: Downloaded newer image for {host}/base/bb:1" in out, out
    r = eng.docker("run", "--rm", "authbuilt", "cat", "/b")
    assert r.returncode == 0 and r.stdout.decode().strip() == "built", _text(r)
    # --pull asks the registry although the base is here
    r = eng.docker("build", "--pull", "-t", "authbuilt", str(ctx), timeout=120)
    assert r.returncode == 0 and f"Status: Image is up to date for {host}/base/bb:1" in _text(r), _text(r)

    # logged out: the CLI sends no credentials for the registry, the pull is refused, no image
    assert eng.docker("logout", host).returncode == 0
    assert eng.docker("rmi", "authbuilt", f"{host}/base/bb:1").returncode == 0
    r = eng.docker("build", "-t", "authbuilt", str(ctx), timeout=120)
    assert r.returncode != 0, _text(r)
    assert f"pull access denied for {host}/base/bb" in _text(r), _text(r)
    assert eng.docker("image", "inspect", f"{host}/base/bb:1").returncode != 0


def test_zstd_layer_pushed_pulled_and_run(tmp_path: Path, busybox_rootfs: Path, registry: Callable[..., str],
                                          daemon: Callable[..., Engine]) -> None:
    zstandard = pytest.importorskip("zstandard")
    tar = make_image_tar(busybox_rootfs, tmp_path / "rootfs.tar")
    zst = tmp_path / "rootfs.tar.zst"
    zst.write_bytes(zstandard.ZstdCompressor().compress(tar.read_bytes()))
    host = registry("127.0.0.1")
    eng = daemon()
    r = eng.docker("import", str(zst), f"{host}/z/app:1")
    assert r.returncode == 0, _text(r)
    r = eng.docker("push", f"{host}/z/app:1")
    assert r.returncode == 0, _text(r)
    with urllib.request.urlopen(urllib.request.Request(
            f"http://{host}/v2/z/app/manifests/1",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}), timeout=10) as resp:
        man = json.loads(resp.read())
    assert [x["mediaType"] for x in man["layers"]] == ["application/vnd.oci.image.layer.v1.tar+zstd"]
    assert eng.docker("rmi", f"{host}/z/app:1").returncode == 0
    r = eng.docker("pull", f"{host}/z/app:1")
    assert r.returncode == 0 and "Pull complete" in _text(r), _text(r)
    r = eng.docker("run", "--rm", f"{host}/z/app:1", "echo", "zstd-ok")
    assert r.returncode == 0 and r.stdout.decode().strip() == "zstd-ok", _text(r)
