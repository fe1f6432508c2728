"""Plain-copy snapshotter, the fallback where overlay is unavailable.

Every snapshot's ``fs`` is a full copy of its parent's (``cp -a``, hard links and xattrs
kept), so layers are applied by performing their deletions. Mounts are bind mounts.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from dockyard.errors import Internal
from dockyard.snapshots.mount import Mount
from dockyard.snapshots.snapshotter import Snapshotter
from dockyard.snapshots.storage import Info, Kind


class NaiveSnapshotter(Snapshotter):
    name = "naive"
    apply_mode = "naive"

    def _make_dirs(self, d: Path, parent: Info | None) -> None:
        if parent is None:
            super()._make_dirs(d, parent)
            return
        d.mkdir(parents=True)
        src = self._dir(parent.id) / "fs"
        r = subprocess.run(["cp", "-a", "--", str(src), str(d / "fs")], capture_output=True, text=True)
        if r.returncode != 0:
            raise Internal(f"copying snapshot {parent.key}: {r.stderr.strip()}")

    def mounts(self, key: str) -> list[Mount]:
        info = self.meta.get(key)
        fs = str(self._dir(info.id) / "fs")
        ro = "ro" if info.kind is Kind.COMMITTED else "rw"
        return [Mount("bind", fs, (ro, "rbind"))]
