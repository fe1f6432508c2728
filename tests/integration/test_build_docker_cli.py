"""`docker build` (classic builder API) with the real docker CLI against a private dockyardd."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

Engine = Any  # the fixture's type lives in this folder's conftest.py

pytestmark = pytest.mark.root

DOCKERFILE = """\
ARG BASE=busybox
FROM ${BASE} AS stage1
RUN echo built > /built.txt
FROM busybox
ARG WHO=nobody
ENV GREETING=hello
WORKDIR /app
COPY --from=stage1 /built.txt ./
COPY src/ ./src/
COPY . /ctx/
RUN <<EOT
echo "heredoc ran for $WHO" > /app/heredoc.txt
EOT
CMD ["sh", "-c", "echo $GREETING; cat /app/built.txt /app/heredoc.txt; ls /app/src | wc -l; pwd"]
"""


def _build(engine: Engine, *args: str, input: bytes | None = None) -> Any:
    env = {**engine.env(), "DOCKER_BUILDKIT": "0"}
    import subprocess

    return subprocess.run(["docker", "build", *args], env=env, input=input, capture_output=True, timeout=120)


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    c = tmp_path / "ctx"
    (c / "src").mkdir(parents=True)
    (c / "src" / "blob").write_bytes(os.urandom(1 << 20))
    (c / "src" / "a.txt").write_text("one\n")
    (c / "secret.txt").write_text("ignored\n")
    (c / ".dockerignore").write_text("secret.txt\n")
    (c / "Dockerfile").write_text(DOCKERFILE)
    return c


def test_build_run_and_rebuild_from_cache(engine: Engine, ctx: Path, tmp_path: Path) -> None:
    iid_file = tmp_path / "iid"
    cp = _build(engine, "-t", "app:1", "-t", "app:latest", "--build-arg", "WHO=me", "--label", "via=test",
                "--iidfile", str(iid_file), str(ctx))
    assert cp.returncode == 0, cp.stdout.decode()[-2000:] + cp.stderr.decode()
    text = cp.stdout.decode()
    assert "Step 1/13 : ARG BASE=busybox" in text and "Successfully tagged app:1" in text
    iid = iid_file.read_text().strip()
    assert iid.startswith("sha256:")
    run = engine.docker("run", "--rm", "--network", "none", "app:1")
    assert run.stdout.decode() == "hello\nbuilt\nheredoc ran for me\n2\n/app\n", run.stderr
    assert engine.docker("run", "--rm", "--network", "none", "app:1", "test", "-f", "/ctx/src/a.txt").returncode == 0
    assert engine.docker("run", "--rm", "--network", "none", "app:1", "test", "-e", "/ctx/secret.txt").returncode == 1
    inspect = json.loads(engine.docker("image", "inspect", "app:latest").stdout)[0]
    assert inspect["Id"] == iid and inspect["Config"]["Labels"] == {"via": "test"}
    history = engine.docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", "app:1").stdout.decode()
    assert "WHO=me" not in history  # build-arg values never reach history
    again = _build(engine, "-t", "app:2", "--build-arg", "WHO=me", "--label", "via=test", str(ctx))
    assert again.returncode == 0
    assert again.stdout.decode().count("Using cache") >= 8 and "Running in" not in again.stdout.decode()
    assert json.loads(engine.docker("image", "inspect", "app:2").stdout)[0]["Id"] == iid
    quiet = _build(engine, "-q", "--build-arg", "WHO=me", "--label", "via=test", str(ctx))
    assert quiet.stdout.decode().strip() == iid
    # the built layers are a regular docker-archive for `docker save`
    saved = tmp_path / "app.tar"
    assert engine.docker("save", "-o", str(saved), "app:1").returncode == 0
    import tarfile

    with tarfile.open(saved) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] == ["app:1"] and len(manifest[0]["Layers"]) == len(inspect["RootFS"]["Layers"])


def test_dockerfile_from_stdin_outside_context_and_target(engine: Engine, ctx: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.Dockerfile"
    outside.write_text("FROM busybox AS one\nRUN echo one > /one\nFROM busybox AS two\nRUN echo two > /two\n")
    cp = _build(engine, "-f", str(outside), "--target", "one", "-t", "t:one", str(ctx))
    assert cp.returncode == 0, cp.stderr.decode()
    assert engine.docker("run", "--rm", "--network", "none", "t:one", "cat", "/one").stdout == b"one\n"
    assert engine.docker("run", "--rm", "--network", "none", "t:one", "test", "-e", "/two").returncode == 1
    cp = _build(engine, "-f", "-", "-t", "t:stdin", str(ctx), input=b"FROM busybox\nCOPY src/a.txt /a\n")
    assert cp.returncode == 0, cp.stderr.decode()
    assert engine.docker("run", "--rm", "--network", "none", "t:stdin", "cat", "/a").stdout == b"one\n"


def test_build_errors_name_the_line_and_tag_nothing(engine: Engine, ctx: Path) -> None:
    (ctx / "Dockerfile.bad").write_text("FROM busybox\nRUN true\nFROBNICATE now\n")
    cp = _build(engine, "-f", str(ctx / "Dockerfile.bad"), "-t", "bad:1", str(ctx))
    assert cp.returncode != 0
    assert b"line 3" in cp.stdout + cp.stderr and b"unknown instruction: FROBNICATE" in cp.stdout + cp.stderr
    (ctx / "Dockerfile.fail").write_text("FROM busybox\nRUN exit 3\n")
    cp = _build(engine, "-f", str(ctx / "Dockerfile.fail"), "-t", "bad:1", str(ctx))
    assert cp.returncode != 0
    assert b"The command '/bin/sh -c exit 3' returned a non-zero code: 3" in cp.stdout + cp.stderr
    assert engine.docker("image", "inspect", "bad:1").returncode != 0
    assert engine.docker("ps", "-aq").stdout.split() == []


def test_builder_prune(engine: Engine, ctx: Path) -> None:
    (ctx / "Dockerfile.p").write_text("FROM busybox\nRUN echo prune-me > /p\n")
    assert _build(engine, "-f", str(ctx / "Dockerfile.p"), str(ctx)).returncode == 0
    cp = engine.docker("builder", "prune", "-f")
    assert cp.returncode == 0, cp.stderr
    assert b"Total reclaimed space" in cp.stdout
    again = _build(engine, "-f", str(ctx / "Dockerfile.p"), str(ctx))
    assert again.returncode == 0 and b"Using cache" not in again.stdout
