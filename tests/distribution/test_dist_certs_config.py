"""certs.d lookup and contexts, X-Registry-Config decoding, Go's wording of TLS failures."""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
from pathlib import Path

import aiohttp
import pytest

from dockyard.distribution.auth import Credentials, from_registry_config_header
from dockyard.distribution.certs import certs_dir_for, ssl_context
from dockyard.distribution.client import tls_cause
from dockyard.distribution.endpoints import Endpoint, endpoints_for
from dockyard.errors import InvalidArgument


def test_certs_dir_lookup_and_endpoints(tmp_path: Path) -> None:
    ours, docker = tmp_path / "dockyard", tmp_path / "docker"
    (docker / "reg.example:5000").mkdir(parents=True)
    dirs = (str(ours), str(docker))
    assert certs_dir_for("reg.example:5000", dirs) == str(docker / "reg.example:5000")
    (ours / "reg.example:5000").mkdir(parents=True)
    assert certs_dir_for("reg.example:5000", dirs) == str(ours / "reg.example:5000")  # ours first
    assert certs_dir_for("reg.example", dirs) == ""  # the port is part of the name, as dockerd
    assert certs_dir_for("../x", dirs) == "" and certs_dir_for("..", dirs) == ""
    assert endpoints_for("reg.example:5000", certs_dirs=dirs) == [
        Endpoint("https://reg.example:5000", certs_dir=str(ours / "reg.example:5000"))]
    eps = endpoints_for("docker.io", mirrors=("https://reg.example:5000",), certs_dirs=dirs)
    assert eps[0].certs_dir == str(ours / "reg.example:5000") and eps[1].certs_dir == ""


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_ssl_context_loads_ca_and_client_pairs(tmp_path: Path) -> None:
    d = tmp_path / "h:1"
    d.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=t", "-keyout", str(d / "client.key"), "-out", str(d / "client.cert")],
                   check=True, capture_output=True)
    shutil.copy(d / "client.cert", d / "ca.crt")
    ctx = ssl_context(str(d), verify=True)
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert any(c.get("subject") == ((("commonName", "t"),),) for c in ctx.get_ca_certs())
    loose = ssl_context(str(d), verify=False)
    assert loose.verify_mode == ssl.CERT_NONE and not loose.check_hostname
    (d / "client.key").unlink()
    with pytest.raises(InvalidArgument, match=r"missing key client.key for client certificate"):
        ssl_context(str(d), verify=True)
    (d / "client.cert").unlink()
    (d / "ca.crt").write_text("not a certificate\n")
    with pytest.raises(InvalidArgument, match=r"ca.crt: cannot load TLS file"):
        ssl_context(str(d), verify=True)


def test_registry_config_header() -> None:
    def enc(doc: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()

    assert from_registry_config_header(None) == {} and from_registry_config_header("e30=") == {}
    got = from_registry_config_header(enc({
        "127.0.0.1:5000": {"username": "alice", "password": "pw"},
        "https://index.docker.io/v1/": {"auth": base64.b64encode(b"bob:x").decode()},
        "empty.example": {},
    }))
    assert got == {"127.0.0.1:5000": Credentials("alice", "pw"), "docker.io": Credentials("bob", "x")}
    with pytest.raises(InvalidArgument, match="X-Registry-Config: invalid value"):
        from_registry_config_header("%%%")
    with pytest.raises(InvalidArgument, match="entry 'r': expected a JSON object"):
        from_registry_config_header(enc({"r": "x"}))


def test_tls_causes_in_go_words() -> None:
    key = aiohttp.client_reqrep.ConnectionKey("h", 1, True, True, None, None, None)
    plain = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    plain.reason = "WRONG_VERSION_NUMBER"
    assert tls_cause(aiohttp.ClientConnectorSSLError(key, plain)) == \
        "http: server gave HTTP response to HTTPS client"
    unknown = ssl.SSLCertVerificationError(1, "certificate verify failed")
    unknown.verify_code, unknown.verify_message = 19, "self-signed certificate in certificate chain"
    assert tls_cause(aiohttp.ClientConnectorCertificateError(key, unknown)) == \
        "tls: failed to verify certificate: x509: certificate signed by unknown authority"
    other = ssl.SSLCertVerificationError(1, "certificate verify failed")
    other.verify_code, other.verify_message = 10, "certificate has expired"
    assert tls_cause(aiohttp.ClientConnectorCertificateError(key, other)) == \
        "tls: failed to verify certificate: x509: certificate has expired"
    assert tls_cause(aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "refused"))) is None
