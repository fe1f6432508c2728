"""Platforms (``os/arch[/variant]``): the host's, parsing, and picking a manifest from an index.

Pure logic. Architecture names are normalised the way containerd's platforms package does
(``x86_64`` -> ``amd64``, ``aarch64`` -> ``arm64``, ``arm64/v8`` == ``arm64``).
"""

from __future__ import annotations

import platform as _platform
from typing import Any

from dockyard.errors import InvalidArgument, NotFound

_ARCH = {
    "x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armhf": "arm",
    "i386": "386", "i686": "386",
}


def normalize_arch(arch: str, variant: str = "") -> tuple[str, str]:
    arch = _ARCH.get(arch.lower(), arch.lower())
    if arch == "arm64" and variant == "v8":
        variant = ""
    if arch == "arm" and not variant:
        variant = "v7"
    return arch, variant


def host_platform() -> tuple[str, str, str]:
    """(os, architecture, variant) of this machine."""
    arch, variant = normalize_arch(_platform.machine())
    return "linux", arch, variant


def parse_platform(p: str | None) -> tuple[str, str, str]:
    """``os[/arch[/variant]]`` -> (os, arch, variant); None or "" -> the host's."""
    if not p:
        return host_platform()
    parts = p.lower().split("/")
    if len(parts) > 3 or not all(parts):
        raise InvalidArgument(f"invalid platform {p!r}: expected os[/arch[/variant]]")
    arch, variant = normalize_arch(
        parts[1] if len(parts) > 1 else host_platform()[1], parts[2] if len(parts) > 2 else ""
    )
    return parts[0], arch, variant


def matches(desc_platform: dict[str, Any] | None, wanted: tuple[str, str, str]) -> bool:
    """Does an index entry's ``platform`` object satisfy ``wanted``? (no platform: yes)."""
    if not desc_platform:
        return True
    os_, arch, variant = wanted
    d_arch, d_variant = normalize_arch(str(desc_platform.get("architecture", "")), str(desc_platform.get("variant", "")))
    if str(desc_platform.get("os", "")).lower() != os_ or d_arch != arch:
        return False
    return not variant or not d_variant or d_variant == variant


def select_manifest(index: dict[str, Any], platform: str | None = None) -> dict[str, Any]:
    """The manifest descriptor of ``index`` for ``platform`` (the host's by default).

    Attestation manifests (``vnd.docker.reference.type``) and ``unknown/unknown`` entries are
    skipped, as docker does. Raises NotFound naming the platform when nothing matches."""
    wanted = parse_platform(platform)
    for d in index.get("manifests") or []:
        ann = d.get("annotations") or {}
        if "vnd.docker.reference.type" in ann:
            continue
        if matches(d.get("platform"), wanted):
            return d
    raise NotFound(f"no matching manifest for {'/'.join(x for x in wanted if x)} in the manifest list entries")
