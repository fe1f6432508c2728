"""Helpers for registry tests: a tiny http.client wrapper and content builders."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha512(data: bytes) -> str:
    return "sha512:" + hashlib.sha512(data).hexdigest()


@dataclass
class Resp:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def code(self) -> str | None:
        try:
            return self.json()["errors"][0]["code"]
        except (ValueError, KeyError, IndexError, TypeError):
            return None


@dataclass
class Reg:
    url: str
    root: Path
    pid: int
    auth: str | None = None  # Authorization header value used by default

    def req(self, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None, auth: str | None = "default") -> Resp:
        u = urlsplit(self.url)
        if u.scheme == "https":
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                u.hostname, u.port, timeout=60, context=ctx)
        else:
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        h = dict(headers or {})
        a = self.auth if auth == "default" else auth
        if a:
            h["Authorization"] = a
        if path.startswith("http"):
            path = urlsplit(path)._replace(scheme="", netloc="").geturl()
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            return Resp(r.status, r.headers, r.read())
        finally:
            conn.close()

    # -- conveniences -----------------------------------------------------------------------
    def push_blob(self, name: str, data: bytes, digest: str | None = None) -> str:
        digest = digest or sha256(data)
        r = self.req("POST", f"/v2/{name}/blobs/uploads/")
        assert r.status == 202, (r.status, r.body)
        loc = r.headers["Location"]
        sep = "&" if "?" in loc else "?"
        r = self.req("PUT", f"{loc}{sep}digest={digest}", data,
                     {"Content-Type": "application/octet-stream"})
        assert r.status == 201, (r.status, r.body)
        return digest

    def push_image(self, name: str, tag: str | None, layer: bytes = b"layer",
                   config: bytes | None = None, media_type: str = OCI_MANIFEST,
                   extra: dict[str, Any] | None = None) -> tuple[str, bytes]:
        config = config if config is not None else json.dumps(
            {"architecture": "amd64", "os": "linux", "tag": tag}).encode()
        cd = self.push_blob(name, config)
        ld = self.push_blob(name, layer)
        m = image_manifest(cd, len(config), [(ld, len(layer))], media_type, extra)
        d = sha256(m)
        r = self.req("PUT", f"/v2/{name}/manifests/{tag or d}", m, {"Content-Type": media_type})
        assert r.status == 201, (r.status, r.body)
        return d, m


def image_manifest(config_digest: str, config_size: int, layers: list[tuple[str, int]],
                   media_type: str = OCI_MANIFEST, extra: dict[str, Any] | None = None) -> bytes:
    docker = media_type == DOCKER_MANIFEST
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json" if docker
                   else OCI_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip" if docker
                    else OCI_LAYER, "digest": d, "size": s} for d, s in layers],
    }
    doc.update(extra or {})
    return json.dumps(doc, indent=1).encode()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
