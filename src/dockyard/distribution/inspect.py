"""The descriptor and platforms of a remote reference (``GET /distribution/{name}/json``).

An index answers with its entries' platforms (attestation entries skipped); an image
manifest with the platform its config names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from dockyard.distribution.auth import ANONYMOUS, Credentials
from dockyard.distribution.pull import resolve
from dockyard.distribution.service import Distribution
from dockyard.oci import mediatypes as mt
from dockyard.oci import reference


@dataclass(frozen=True, slots=True)
class RemoteInfo:
    media_type: str
    digest: str
    size: int
    platforms: tuple[dict[str, Any], ...]


def _platform(p: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"architecture": p.get("architecture", ""), "os": p.get("os", "")}
    for k in ("os.version", "os.features", "variant", "features"):
        if p.get(k):
            out[k] = p[k]
    return out


async def inspect_remote(dist: Distribution, ref: str, *, creds: Credentials = ANONYMOUS) -> RemoteInfo:
    parsed = reference.parse_normalized(ref)
    async with dist.session() as session:
        rc, body, media_type, digest = await resolve(dist, session, parsed, creds)
        doc = json.loads(body)
        plats: list[dict[str, Any]] = []
        if media_type in mt.INDEX_TYPES:
            for d in doc.get("manifests") or []:
                if "vnd.docker.reference.type" in (d.get("annotations") or {}):
                    continue
                if d.get("platform"):
                    plats.append(_platform(d["platform"]))
        else:
            cfg_desc = doc.get("config") or {}
            cfg = json.loads(await rc.get_small_blob(str(cfg_desc.get("digest", ""))))
            plats.append(_platform(cfg))
        return RemoteInfo(media_type, digest, len(body), tuple(plats))
