"""``dockyardd --experimental`` (as dockerd's): the docker CLI then allows ``build --squash``."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_support import Engine, make_image_tar, start_daemon, stop_engine

pytestmark = pytest.mark.root

DOCKERFILE = "FROM busybox\nRUN echo one > /one\nRUN echo two > /two\nCMD [\"cat\", \"/one\", \"/two\"]\n"


@pytest.fixture(scope="module")
def experimental(busybox_rootfs: Path) -> Iterator[Engine]:
    root = Path(tempfile.mkdtemp(prefix="dyx-", dir="/tmp"))
    args = ["--experimental"]
    eng = Engine(root, str(root / "d.sock"), start_daemon(root, str(root / "d.sock"), args), "default", args)
    try:
        out = eng.docker("import", str(make_image_tar(busybox_rootfs, root / "busybox.tar")), "busybox:latest")
        assert out.returncode == 0, out.stderr
        yield eng
    finally:
        stop_engine(eng)


def layers(eng: Engine, ref: str) -> list[str]:
    return json.loads(eng.docker("image", "inspect", ref).stdout)[0]["RootFS"]["Layers"]


def test_squash_with_an_experimental_daemon(experimental: Engine, tmp_path: Path) -> None:
    eng = experimental
    assert eng.docker("version", "-f", "{{.Server.Experimental}}").stdout.decode().strip() == "true"
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    build = ["build", "-q", "--squash", "-t", "squashed", str(tmp_path)]
    cp = eng.docker(*build)
    assert cp.returncode == 0, cp.stderr
    # one layer on top of the base, whatever the number of RUN steps
    assert len(layers(eng, "squashed")) == len(layers(eng, "busybox")) + 1
    assert eng.docker("run", "--rm", "squashed").stdout == b"one\ntwo\n"


def test_without_experimental_the_cli_refuses_squash(engine: Engine, tmp_path: Path) -> None:
    assert engine.docker("version", "-f", "{{.Server.Experimental}}").stdout.decode().strip() == "false"
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    cp = engine.docker("build", "--squash", str(tmp_path))
    assert cp.returncode != 0 and b"experimental" in cp.stderr
