"""``dockyard build``'s context tar applies .dockerignore with docker's rules."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from dockyard.cli.build import context_tar


def names(data: bytes) -> set[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name for m in tf.getmembers()}


def test_dockerignore_double_star_exception_and_build_files(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\n")
    (tmp_path / ".dockerignore").write_text("**/*.log\n!keep.log\nDockerfile\n.dockerignore\nsecret/\n")
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "deep.log").write_text("x")
    (tmp_path / "a" / "b" / "code.py").write_text("x")
    (tmp_path / "keep.log").write_text("x")
    (tmp_path / "drop.log").write_text("x")
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "key").write_text("x")
    data, df = context_tar(str(tmp_path), str(tmp_path / "Dockerfile"))
    got = names(data)
    assert df == "Dockerfile"
    # ** matches at any depth; ! re-includes; the Dockerfile and .dockerignore are always sent
    assert {"a/b/code.py", "keep.log", "Dockerfile", ".dockerignore"} <= got
    assert not {"a/b/deep.log", "drop.log", "secret", "secret/key"} & got


def test_dockerfile_outside_the_context_gets_a_private_name(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "f.txt").write_text("x")
    outside = tmp_path / "other.Dockerfile"
    outside.write_text("FROM busybox\n")
    data, df = context_tar(str(ctx), str(outside))
    assert df == ".dockyard.Dockerfile"
    assert {"f.txt", ".dockyard.Dockerfile"} <= names(data)


def test_dockerfile_specific_ignore_file_wins(tmp_path: Path) -> None:
    (tmp_path / "app.Dockerfile").write_text("FROM busybox\n")
    (tmp_path / "app.Dockerfile.dockerignore").write_text("only-app\n")
    (tmp_path / ".dockerignore").write_text("only-default\n")
    (tmp_path / "only-app").write_text("x")
    (tmp_path / "only-default").write_text("x")
    data, _ = context_tar(str(tmp_path), str(tmp_path / "app.Dockerfile"))
    got = names(data)
    assert "only-app" not in got and "only-default" in got
