"""Parsing pushed manifests: what they are and what they reference.

Pure logic, no I/O. ``parse_manifest`` accepts OCI image manifests and indexes, Docker schema 2
manifests and manifest lists (and OCI artifacts that follow the image-manifest shape). It returns
a ``ParsedManifest`` naming the blobs and child manifests a push must already have, the
``subject`` (not required to exist, per spec) and the fields the referrers API reports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.oci.digest import Digest
from dockyard.registry.errcodes import ManifestInvalid

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
IMAGE_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
MANIFEST_TYPES = IMAGE_TYPES + INDEX_TYPES
# Docker's "foreign" and OCI "non-distributable" layers live elsewhere (urls, or not at all):
# a push need not include them, so they are not checked.
FOREIGN_LAYERS = (
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
)
MAX_MANIFEST_SIZE = 4 * 1024 * 1024


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    raw: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class ParsedManifest:
    media_type: str
    is_index: bool
    blobs: tuple[Descriptor, ...]       # config + layers: must exist in the repository
    children: tuple[Descriptor, ...]    # index entries: manifests that must exist
    subject: Descriptor | None
    artifact_type: str | None          # as the referrers API reports it
    annotations: dict[str, str]


def _descriptor(obj: Any, where: str) -> Descriptor:
    if not isinstance(obj, dict):
        raise ManifestInvalid(f"{where}: descriptor must be an object")
    try:
        d = Digest.parse(str(obj.get("digest", "")))
    except InvalidArgument as e:
        raise ManifestInvalid(f"{where}.digest: {e}") from None
    size = obj.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestInvalid(f"{where}.size must be a non-negative integer")
    mt = obj.get("mediaType", "")
    if not isinstance(mt, str):
        raise ManifestInvalid(f"{where}.mediaType must be a string")
    return Descriptor(mt, d, size, obj)


def parse_manifest(body: bytes, content_type: str | None) -> ParsedManifest:
    """Parse and check ``body``; raise ManifestInvalid naming the offending field."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise ManifestInvalid(f"manifest is not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ManifestInvalid("manifest must be a JSON object")
    if doc.get("schemaVersion") != 2:
        raise ManifestInvalid(
            f"schemaVersion must be 2 (got {doc.get('schemaVersion')!r}); schema 1 is unsupported")
    ct = (content_type or "").split(";")[0].strip().lower()
    mt = doc.get("mediaType")
    if mt is not None and not isinstance(mt, str):
        raise ManifestInvalid("mediaType must be a string")
    if mt and ct and ct not in ("application/json", "application/octet-stream") and ct != mt:
        raise ManifestInvalid(f"mediaType {mt!r} does not match Content-Type {ct!r}")
    media_type = mt or (ct if ct in MANIFEST_TYPES else "")
    if not media_type:
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    is_index = media_type in INDEX_TYPES or (
        media_type not in IMAGE_TYPES and "manifests" in doc and "config" not in doc)

    blobs: list[Descriptor] = []
    children: list[Descriptor] = []
    if is_index:
        entries = doc.get("manifests")
        if not isinstance(entries, list):
            raise ManifestInvalid("manifests must be a list")
        children = [_descriptor(e, f"manifests[{i}]") for i, e in enumerate(entries)]
        artifact_type = doc.get("artifactType") or None
    else:
        if "config" not in doc:
            raise ManifestInvalid("config is required in an image manifest")
        config = _descriptor(doc["config"], "config")
        blobs.append(config)
        layers = doc.get("layers", [])
        if not isinstance(layers, list):
            raise ManifestInvalid("layers must be a list")
        for i, layer in enumerate(layers):
            desc = _descriptor(layer, f"layers[{i}]")
            if desc.media_type in FOREIGN_LAYERS:
                continue
            blobs.append(desc)
        artifact_type = doc.get("artifactType") or config.media_type or None
    subject = _descriptor(doc["subject"], "subject") if doc.get("subject") is not None else None
    annotations = doc.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise ManifestInvalid("annotations must be an object")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise ManifestInvalid("artifactType must be a string")
    return ParsedManifest(media_type, is_index, tuple(blobs), tuple(children), subject,
                          artifact_type, annotations)


def pick_platform(doc: dict[str, Any], os_: str = "linux", arch: str = "amd64") -> Digest | None:
    """The entry of an index for ``os_/arch`` (for clients that can't take indexes)."""
    for e in doc.get("manifests", []):
        p = e.get("platform") or {}
        if p.get("os") == os_ and p.get("architecture") == arch:
            try:
                return Digest.parse(e.get("digest", ""))
            except InvalidArgument:
                return None
    return None
