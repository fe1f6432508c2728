"""Layer identities: ChainID (OCI image spec, "Layer ChainID").

    ChainID(L0)      = DiffID(L0)
    ChainID(L0..Ln)  = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln))

Snapshots of unpacked layers are keyed by ChainID so that images sharing a base share its
unpacked layers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.oci.digest import Digest


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """The ChainID of every prefix of ``diff_ids`` (``sha256:<hex>`` strings)."""
    out: list[str] = []
    for d in diff_ids:
        if not out:
            out.append(d)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out


def chain_on(parent: str | None, diff_id: str) -> str:
    """The ChainID of layer ``diff_id`` unpacked on the layers whose ChainID is ``parent``
    (None: the first layer)."""
    return chain_ids([parent, diff_id])[-1] if parent else diff_id


def chain_id(diff_ids: Sequence[str]) -> str | None:
    ids = chain_ids(diff_ids)
    return ids[-1] if ids else None


def config_diff_ids(cfg: dict[str, Any], config_digest: str, n_layers: int | None) -> list[str]:
    """An image config's ``rootfs.diff_ids``, checked: a list of valid digests, one per layer of
    the manifest (``n_layers``; None when the manifest's ``layers`` is not a list)."""
    rootfs = cfg.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        raise InvalidArgument(f"image config {config_digest}: rootfs.diff_ids must be a list of digests")
    for d in diff_ids:
        Digest.parse(d)
    if n_layers != len(diff_ids):
        raise InvalidArgument(f"image config {config_digest} lists {len(diff_ids)} diff_ids but the "
                              f"manifest has {'no' if n_layers is None else n_layers} layers")
    return diff_ids
