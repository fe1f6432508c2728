"""OCI content descriptors (mediaType, digest, size, annotations, platform) as a frozen value."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.oci.digest import Digest


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    platform: dict[str, Any] | None = field(default=None, compare=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        if self.platform:
            d["platform"] = dict(self.platform)
        return d

    @classmethod
    def from_dict(cls, d: Any, *, where: str = "descriptor") -> Descriptor:
        if not isinstance(d, dict):
            raise InvalidArgument(f"{where}: expected an object")
        try:
            digest, size = d["digest"], d["size"]
        except KeyError as e:
            raise InvalidArgument(f"{where}: missing field {e.args[0]!r}") from None
        if not isinstance(size, int) or size < 0:
            raise InvalidArgument(f"{where}: invalid size {size!r}")
        Digest.parse(str(digest))
        ann = d.get("annotations") or {}
        if not isinstance(ann, dict):
            raise InvalidArgument(f"{where}: annotations must be an object")
        return cls(str(d.get("mediaType", "")), str(digest), size, dict(ann), d.get("platform"))
