"""TLS with --tls-cert/--tls-key (self-signed certificate made with openssl)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from regtest_support import Reg


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_tls_serving(registry_factory: Any, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    reg: Reg = registry_factory("--tls-cert", str(cert), "--tls-key", str(key))
    assert reg.url.startswith("https://")
    assert reg.req("GET", "/v2/").status == 200
    d = reg.push_blob("tls/repo", b"over tls")
    assert reg.req("GET", f"/v2/tls/repo/blobs/{d}").body == b"over tls"


def test_tls_needs_both_files(registry_factory: Any, tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="tls"):
        registry_factory("--tls-cert", str(tmp_path / "cert.pem"))
