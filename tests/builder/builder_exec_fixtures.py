"""Shared fixtures of the executor tests: a real image store with busybox, a Builder, helpers.

The built images are checked by their config and by running commands in them with the OCI
runtime (``steps.run.run_container`` on a snapshot of the image, as a RUN step would).
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dockyard.builder.executor import Builder, BuildOptions
from dockyard.builder.steps.run import RunSpec, run_container
from dockyard.images.service import ImageService

RUNTIME = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "dockyard-runtime")


@dataclass
class Env:
    root: Path
    images: ImageService
    builder: Builder
    messages: list[dict[str, Any]] = field(default_factory=list)

    def build(self, ctx: Path, dockerfile: str | None = None, **kw: Any) -> str | None:
        if dockerfile is not None:
            (ctx / "Dockerfile").write_text(dockerfile)
        self.messages = []
        return self.builder.build_dir(ctx, BuildOptions(**kw), self.messages.append)

    def build_tar(self, data: bytes, **kw: Any) -> str | None:
        self.messages = []
        return self.builder.build_tar(io.BytesIO(data), BuildOptions(**kw), self.messages.append)

    @property
    def text(self) -> str:
        return "".join(m.get("stream", "") for m in self.messages)

    @property
    def error(self) -> str | None:
        errs = [m["error"] for m in self.messages if "error" in m]
        return errs[0] if errs else None

    def run(self, image_id: str, *argv: str) -> tuple[int, str]:
        """Run ``argv`` in the image with its Env/WorkingDir/User; (exit code, output)."""
        cfg = self.images.config_of(image_id).get("config") or {}
        out: list[str] = []
        key = f"test-{secrets.token_hex(8)}"
        bundle = Path(tempfile.mkdtemp(dir=self.root))
        (bundle / "rootfs").mkdir()
        self.images.prepare_rootfs(image_id, key)
        try:
            self.images.mount_rootfs(key, bundle / "rootfs")
            try:
                spec = RunSpec(cid=secrets.token_hex(32), argv=argv, env=tuple(cfg.get("Env") or ()),
                               cwd=cfg.get("WorkingDir") or "/", user=cfg.get("User") or "")
                code = run_container(RUNTIME, self.root / "state", bundle, spec, out.append)
            finally:
                self.images.unmount_rootfs(bundle / "rootfs")
        finally:
            self.images.remove_rootfs(key)
            shutil.rmtree(bundle)
        return code, "".join(out)

    def config(self, image_id: str) -> dict[str, Any]:
        return self.images.config_of(image_id)


def make_env(tmp_path_factory: pytest.TempPathFactory, busybox_rootfs: Path) -> Iterator[Env]:
    """Body of a module-scoped ``env`` fixture (each test module declares its own)."""
    root = tmp_path_factory.mktemp("exec")
    images = ImageService(root / "image", snapshotter=os.environ.get("DOCKYARD_TEST_SNAPSHOTTER", "auto"))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        tf.add(busybox_rootfs, arcname=".")
    buf.seek(0)
    images.import_tarball(buf, repo_tag="busybox:latest")
    builder = Builder(images, root / "builder", RUNTIME, root / "state")
    yield Env(root, images, builder)
    images.close()


def no_leftovers(env: Env) -> None:
    """Nothing of a finished build remains: no mounts under the test root, no build temp dir."""
    with open("/proc/self/mountinfo") as f:
        mounted = [ln.split()[4] for ln in f if str(env.root) in ln.split()[4]]
    assert mounted == []
    assert list((env.root / "builder" / "tmp").iterdir()) == []


def tar_of(entries: list[tuple[str, Any]]) -> bytes:
    """A context tar: (name, bytes) for files, (name, "->target") for symlinks, (name, None) dirs."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in entries:
            ti = tarfile.TarInfo(name)
            if data is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            elif isinstance(data, str) and data.startswith("->"):
                ti.type, ti.linkname = tarfile.SYMTYPE, data[2:]
                tf.addfile(ti)
            else:
                ti.size, ti.mode = len(data), 0o644
                tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()
