"""Domain values handed out by the image service (frozen; convert to wire JSON at the router)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Layer:
    """One layer of an image as stored: the blob (maybe compressed) and its uncompressed identity."""

    media_type: str
    digest: str  # the blob's digest in the content store
    size: int  # the blob's size
    diff_id: str  # sha256 of the uncompressed tar
    unpacked_size: int  # content size: file sizes + symlink lengths (docker's layer SIZE)

    def to_record(self) -> dict[str, Any]:
        return {
            "mediaType": self.media_type, "digest": self.digest, "size": self.size,
            "diffID": self.diff_id, "unpackedSize": self.unpacked_size,
        }

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> Layer:
        return cls(d["mediaType"], d["digest"], d["size"], d["diffID"], d["unpackedSize"])


@dataclass(frozen=True, slots=True)
class Image:
    id: str  # "sha256:<hex>" of the config blob
    repo_tags: tuple[str, ...]  # familiar: ("busybox:latest",)
    repo_digests: tuple[str, ...]  # familiar: ("busybox@sha256:...",)
    config: dict[str, Any] = field(compare=False, hash=False)  # the whole image config JSON
    created: str  # RFC 3339 from the config ("" if absent)
    size: int  # sum of the layers' content sizes (docker's image Size)
    parent: str  # parent image id (docker commit/build), "" if none
    layers: tuple[str, ...]  # chain ids, bottom first
    diff_ids: tuple[str, ...]
    layer_blobs: tuple[Layer, ...]
    manifest_digest: str  # the OCI manifest stored for this image
    added: float  # when this store first recorded the image (epoch seconds)

    @property
    def short_id(self) -> str:
        return self.id.split(":", 1)[-1][:12]

    @property
    def container_config(self) -> dict[str, Any]:
        """The ``config`` member: Env, Cmd, Entrypoint, WorkingDir, User, ..."""
        return self.config.get("config") or {}

    @property
    def os(self) -> str:
        return str(self.config.get("os", "linux"))

    @property
    def architecture(self) -> str:
        return str(self.config.get("architecture", ""))


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    id: str  # image id for the entries that are images, "<missing>" otherwise
    created: int  # epoch seconds
    created_by: str
    tags: tuple[str, ...]
    size: int
    comment: str


@dataclass(frozen=True, slots=True)
class ImageUsage:
    id: str
    size: int
    shared_size: int  # bytes of layers also used by another image


@dataclass(frozen=True, slots=True)
class DiskUsage:
    layers_size: int  # all unique layers, bytes
    images: tuple[ImageUsage, ...]


@dataclass(frozen=True, slots=True)
class Change:
    """One ``docker diff`` line. kind: 0 modified, 1 added, 2 deleted (the Engine API's values)."""

    path: str
    kind: int

    def to_dict(self) -> dict[str, Any]:
        return {"Path": self.path, "Kind": self.kind}
