"""``--squash``: the build's own layers merged into one, on top of the target stage's base.

``squash(images, plan, image_id, work)`` prepares a snapshot of the base image (nothing for
``FROM scratch``; a stage base is followed down to the image it started from), applies
every layer the build added, in order, onto the snapshot's writable dir with the store's own
layer application (whiteouts become the snapshotter's deletions), and commits that as ONE layer
with the final image's config. Returns the new image id (the input id if nothing was added).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dockyard.builder.snapshot import StepSnapshot
from dockyard.builder.stages import SCRATCH, BuildPlan


def _base_of(images: Any, bp: BuildPlan) -> str | None:
    rs = bp.stages[bp.target]
    while rs.base_stage is not None:
        rs = bp.stages[rs.base_stage]
    return None if rs.base == SCRATCH else images.resolve(rs.base)


def squash(images: Any, bp: BuildPlan, image_id: str, work: Path) -> str:
    from dockyard.diff.apply import apply_layer

    base = _base_of(images, bp)
    img = images.get(image_id)
    base_n = len(images.get(base).diff_ids) if base else 0
    added = img.layer_blobs[base_n:]
    if not added:
        return image_id
    with StepSnapshot(images, base, work, init_layer=False) as (key, rootfs):
        images.unmount_rootfs(rootfs)
        upper = images.snapshots.writable_dir(key)
        for layer in added:
            with images.content.open(layer.digest) as f:
                apply_layer(f, upper, images.snapshots.apply_mode)
        return str(images.commit(key, parent_image_id=base, config=img.config.get("config") or {},
                                 created_by="squashed build", consume=True))
