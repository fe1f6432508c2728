"""Overlay snapshotter: each snapshot's ``fs`` is an overlay upper directory.

An active snapshot with committed ancestors mounts as
``overlay lowerdir=<parent fs>:<grandparent fs>...,upperdir=<fs>,workdir=<work>``; one
without a parent mounts ``fs`` with a bind mount. See snapshotter.py for the layout.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from dockyard.snapshots import _mount
from dockyard.snapshots.mount import Mount
from dockyard.snapshots.snapshotter import Snapshotter, force_rmtree
from dockyard.snapshots.storage import Info, Kind


def _forced_off() -> tuple[str, ...]:
    """Turn off overlay features the host enables by default that would hide changes from the
    upper directory (a renamed directory becomes a redirect xattr, a chmod a metacopy): the
    diff for ``docker diff``/``commit`` reads the upper directory as the whole truth."""
    out = []
    for feature in ("redirect_dir", "metacopy"):
        try:
            on = Path(f"/sys/module/overlay/parameters/{feature}").read_text().strip() in ("Y", "on")
        except OSError:
            on = False
        if on:
            out.append(f"{feature}=off")
    return tuple(out)


class OverlaySnapshotter(Snapshotter):
    name = "overlay"
    apply_mode = "overlay"
    can_commit_onto = True

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self._extra = _forced_off()

    def _make_dirs(self, d: Path, parent: Info | None) -> None:
        super()._make_dirs(d, parent)
        (d / "work").mkdir()

    def mounts(self, key: str) -> list[Mount]:
        chain = self.meta.chain(key)
        me, parents = chain[0], chain[1:]
        fs = str(self._dir(me.id) / "fs")
        if me.kind is Kind.COMMITTED:
            # A read-only view of a committed snapshot.
            if not parents:
                return [Mount("bind", fs, ("ro", "rbind"))]
            lower = ":".join([fs] + [str(self._dir(p.id) / "fs") for p in parents])
            return [Mount("overlay", "overlay", ("ro", f"lowerdir={lower}"))]
        if not parents:
            return [Mount("bind", fs, ("rw", "rbind"))]
        lower = ":".join(str(self._dir(p.id) / "fs") for p in parents)
        work = str(self._dir(me.id) / "work")
        return [
            Mount(
                "overlay", "overlay",
                (f"lowerdir={lower}", f"upperdir={fs}", f"workdir={work}", "index=off", *self._extra),
            )
        ]


def overlay_supported(scratch: Path) -> bool:
    """Try a real overlay mount in ``scratch`` (kernels, nested overlay roots and sandboxes vary)."""
    try:
        scratch.mkdir(parents=True, exist_ok=True)
        d = Path(tempfile.mkdtemp(dir=scratch, prefix="ovl-check-"))
    except OSError:
        return False
    try:
        for n in ("lower", "upper", "work", "merged"):
            (d / n).mkdir()
        try:
            _mount.mount(
                "overlay", d / "merged", "overlay", 0,
                f"lowerdir={d / 'lower'},upperdir={d / 'upper'},workdir={d / 'work'}",
            )
        except Exception:
            return False
        _mount.umount(d / "merged", _mount.MNT_DETACH)
        return True
    finally:
        force_rmtree(d)
