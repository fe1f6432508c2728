"""A loopback registry serving TLS (self-signed): https is tried first, without verification."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from dockyard.distribution.pull import pull
from dockyard.distribution.push import push
from dockyard.distribution.service import Distribution
from dockyard.images.service import ImageService

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")]


def test_push_pull_over_tls(tmp_path: Path, registry: Callable[..., str],
                            store_factory: Callable[[str], ImageService],
                            busybox_image: Callable[..., str]) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    host = registry("--tls-cert", str(cert), "--tls-key", str(key))
    a = store_factory("a")
    image_id = busybox_image(a)
    a.tag(image_id, f"{host}/tls/app", "1")
    [res] = asyncio.run(push(Distribution(), a, f"{host}/tls/app:1"))
    b = store_factory("b")
    pr = asyncio.run(pull(Distribution(), b, f"{host}/tls/app:1"))
    assert pr.image_id == image_id and pr.digest == res.digest
    # the access log shows TLS requests only: nothing fell back to plain http
    assert "/v2/tls/app/manifests/1" in (tmp_path / "reg1.log").read_text()
