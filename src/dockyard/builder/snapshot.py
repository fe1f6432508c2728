"""A step's root filesystem: a fresh snapshot of an image, mounted in the build's temp dir.

``StepSnapshot(images, image_id, work, readonly=)`` is a context manager yielding
``(key, rootfs)``::

    <work>/snap-XXXX/            removed on exit (a RUN step uses it as its OCI bundle)
      rootfs/                    the snapshot ``build-<random>`` mounted here

On exit, in reverse order: unmount (quietly: the step may have unmounted to commit), remove
the snapshot, remove the directory, whether the step succeeded or not. ``image_id`` None is an
empty root (FROM scratch). A daemon killed mid-step leaves ``build-*`` snapshots and mounts
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


class StepSnapshot:
    def __init__(self, images: Any, image_id: str | None, work: Path, readonly: bool = False) -> None:
        self.images, self.image_id, self.work, self.readonly = images, image_id, work, readonly
        self.stack = ExitStack()

    def __enter__(self) -> tuple[str, Path]:
        key = f"{KEY_PREFIX}{secrets.token_hex(16)}"
        try:
            d = Path(tempfile.mkdtemp(prefix="snap-", dir=self.work))
            self.stack.callback(shutil.rmtree, d, True)
            rootfs = d / "rootfs"
            rootfs.mkdir()
            self.images.prepare_rootfs(self.image_id, key)
            self.stack.callback(self.images.remove_rootfs, key)
            self.images.mount_rootfs(key, rootfs, readonly=self.readonly)
            self.stack.callback(unmount_quiet, self.images, rootfs)
        except BaseException:
            self.stack.close()
            raise
        return key, rootfs

    def __exit__(self, *exc: object) -> None:
        self.stack.close()
