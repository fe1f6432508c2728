"""A step's root filesystem: a fresh snapshot of an image, mounted in the build's temp dir.

``StepSnapshot(images, image_id, work, readonly=)`` is a context manager yielding
``(key, rootfs)``::

    <work>/snap-XXXX/            removed on exit (a RUN step uses it as its OCI bundle)
      rootfs/                    the snapshot ``build-<random>`` mounted here

On exit, in reverse order: unmount (quietly: the step may have unmounted to commit), remove
the snapshot, remove the directory, whether the step succeeded or not. ``image_id`` None is an
empty root (FROM scratch). ``init_layer`` False: no container runs on it (COPY, ADD, a
look at another stage), so the runtime's mount points needn't be hidden. A daemon killed mid-step leaves ``build-*`` snapshots and mounts
under ``<builder>/tmp``; ``Builder`` removes them when it starts.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from dockyard.errors import DockyardError

KEY_PREFIX = "build-"


def unmount_quiet(images: Any, target: Path) -> None:
    try:
        images.unmount_rootfs(target)
    except (OSError, DockyardError):
        pass


def _remove(images: Any, key: str) -> None:
    """Remove the step's snapshot and init layer, as far as they still exist (a committed step
    consumed its snapshot: it is the layer now)."""
    snaps = images.snapshots
    if snaps.exists(key) or snaps.exists(f"{key}-init"):
        images.remove_rootfs(key)


class StepSnapshot:
    def __init__(self, images: Any, image_id: str | None, work: Path, readonly: bool = False,
                 init_layer: bool = True) -> None:
        self.images, self.image_id, self.work, self.readonly = images, image_id, work, readonly
        self.init_layer = init_layer
        self.stack = ExitStack()

    def __enter__(self) -> tuple[str, Path]:
        key = f"{KEY_PREFIX}{secrets.token_hex(16)}"
        try:
            d = Path(tempfile.mkdtemp(prefix="snap-", dir=self.work))
            self.stack.callback(shutil.rmtree, d, True)
            rootfs = d / "rootfs"
            rootfs.mkdir()
            self.images.prepare_rootfs(self.image_id, key, init_layer=self.init_layer)
            self.stack.callback(_remove, self.images, key)
            self.images.mount_rootfs(key, rootfs, readonly=self.readonly)
            self.stack.callback(unmount_quiet, self.images, rootfs)
        except BaseException:
            self.stack.close()
            raise
        return key, rootfs

    def __exit__(self, *exc: object) -> None:
        self.stack.close()
