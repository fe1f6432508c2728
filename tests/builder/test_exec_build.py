"""The build executor end to end (as root): real image store, real runtime, busybox base."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from builder_exec_fixtures import Env, make_env, no_leftovers, tar_of

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, busybox_rootfs: Path) -> Iterator[Env]:
    yield from make_env(tmp_path_factory, busybox_rootfs)

MULTI = """\
ARG BASE=busybox
FROM ${BASE} AS stage1
RUN echo built > /built.txt
FROM busybox
ENV GREETING=hello
WORKDIR /app
COPY --from=stage1 /built.txt ./
COPY src/ ./src/
COPY . /ctx/
RUN <<EOT
echo "heredoc ran" > /app/heredoc.txt
EOT
CMD ["sh", "-c", "echo $GREETING; cat /app/built.txt /app/heredoc.txt; ls /app/src | wc -l; pwd"]
"""


def _ctx(tmp_path: Path) -> Path:
    c = tmp_path / "ctx"
    (c / "src").mkdir(parents=True)
    (c / "src" / "a.txt").write_text("one\n")
    (c / "src" / "blob").write_bytes(os.urandom(4096))
    (c / "secret.txt").write_text("ignored\n")
    (c / ".dockerignore").write_text("secret.txt\n")
    return c


def test_multi_stage_build_runs_with_its_config(env: Env, tmp_path: Path) -> None:
    c = _ctx(tmp_path)
    iid = env.build(c, MULTI, tags=("app:1",))
    assert iid is not None, env.error
    assert env.images.resolve("app:1") == iid
    cfg = env.config(iid)["config"]
    assert "GREETING=hello" in cfg["Env"] and cfg["WorkingDir"] == "/app"
    code, out = env.run(iid, *cfg["Cmd"])
    assert (code, out) == (0, "hello\nbuilt\nheredoc ran\n2\n/app\n")
    assert env.run(iid, "test", "-f", "/ctx/src/a.txt")[0] == 0
    assert env.run(iid, "test", "-e", "/ctx/secret.txt")[0] == 1  # .dockerignore'd
    text = env.text
    assert "Step 1/11 : ARG BASE=busybox\n" in text and "Successfully tagged app:1\n" in text
    assert any("aux" in m and m["aux"]["ID"] == iid for m in env.messages)
    no_leftovers(env)


def test_cache_hits_on_touch_and_misses_on_content_change(env: Env, tmp_path: Path) -> None:
    c = _ctx(tmp_path)
    df = "FROM busybox\nRUN echo step1 > /s1\nCOPY src/a.txt /a.txt\nRUN cat /a.txt > /copy\n"
    first = env.build(c, df)
    assert first is not None, env.error
    os.utime(c / "src" / "a.txt", (1, 1))  # touched, same content
    again = env.build(c, df)
    assert again == first
    assert env.text.count("Using cache") == 3 and "Running in" not in env.text
    (c / "src" / "a.txt").write_text("two\n")
    changed = env.build(c, df)
    assert changed is not None and changed != first
    text = env.text
    assert text.count("Using cache") == 1  # only the RUN before the COPY
    assert " ---> Cache miss: COPY: content of src/a.txt changed\n" in text
    assert env.run(changed, "cat", "/copy") == (0, "two\n")
    # a build argument that a RUN sees is named when it changes
    df_arg = "FROM busybox\nARG V\nRUN echo $V > /v\n"
    env.build(c, df_arg, build_args={"V": "1"})
    assert env.build(c, df_arg, build_args={"V": "2"}) is not None
    assert " ---> Cache miss: RUN: build argument V changed\n" in env.text
    # --no-cache runs everything again
    env.build(c, df, no_cache=True)
    assert "Using cache" not in env.text and env.text.count("Running in") == 2


def test_metadata_instructions_and_history(env: Env, tmp_path: Path) -> None:
    c = tmp_path / "m"
    c.mkdir()
    df = """\
FROM busybox
ARG SECRETARG
LABEL a=b "c d"=e
EXPOSE 80 53/udp
ENV A=1 B=$SECRETARG
VOLUME /data
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s CMD true
SHELL ["/bin/sh", "-ec"]
ENTRYPOINT ["/bin/echo"]
CMD hi
ONBUILD RUN echo triggered > /tmp/onbuild.txt
RUN echo $SECRETARG > /arg.txt
USER nobody
"""
    iid = env.build(c, df, build_args={"SECRETARG": "s3cr3t"}, labels={"via": "cli"})
    assert iid is not None, env.error
    full = env.config(iid)
    cfg = full["config"]
    assert cfg["Labels"] == {"a": "b", "c d": "e", "via": "cli"}
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert "A=1" in cfg["Env"] and "B=s3cr3t" in cfg["Env"]
    assert cfg["Volumes"] == {"/data": {}} and cfg["StopSignal"] == "SIGTERM"
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000}
    assert cfg["Shell"] == ["/bin/sh", "-ec"] and cfg["Entrypoint"] == ["/bin/echo"]
    assert cfg["Cmd"] == ["/bin/sh", "-ec", "hi"] and cfg["User"] == "nobody"
    assert cfg["OnBuild"] == ["RUN echo triggered > /tmp/onbuild.txt"]
    hist = full["history"]
    run = [h for h in hist if h.get("created_by", "").startswith("RUN")]
    assert run and not run[-1].get("empty_layer")
    assert all(h.get("empty_layer") for h in hist if h.get("created_by", "").startswith(("LABEL", "ENV")))
    # the build arg's value is in the filesystem it produced, never in history
    assert "s3cr3t" not in json.dumps([h.get("created_by", "") for h in hist if "B=" not in h.get("created_by", "")])
    assert not any("SECRETARG=s3cr3t" in h.get("created_by", "") for h in hist)
    assert env.run(iid, "cat", "/arg.txt") == (0, "s3cr3t\n")
    # ONBUILD triggers run in a child build
    env.images.tag(iid, "onbuild-base:latest")
    child = env.build(c, "FROM onbuild-base\nRUN cat /tmp/onbuild.txt\n")
    assert child is not None, env.error
    assert "# Executing 1 build trigger\n" in env.text and "triggered\n" in env.text
    assert "OnBuild" not in env.config(child)["config"] or not env.config(child)["config"]["OnBuild"]
    staged = env.build(c, "FROM busybox AS base\nONBUILD RUN echo staged > /tmp/s\nFROM base\nRUN cat /tmp/s\n")
    assert staged is not None and "staged\n" in env.text


def test_copy_rules_chown_chmod_wildcards_and_add_tar(env: Env, tmp_path: Path) -> None:
    import io
    import tarfile

    c = tmp_path / "cp"
    (c / "dir" / "sub").mkdir(parents=True)
    (c / "dir" / "sub" / "f").write_text("f\n")
    (c / "x1.txt").write_text("1")
    (c / "x2.txt").write_text("2")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        ti = tarfile.TarInfo("inside/t.txt")
        ti.size = 3
        tf.addfile(ti, io.BytesIO(b"tar"))
    (c / "arch.tar.gz").write_bytes(buf.getvalue())
    df = """\
FROM busybox
COPY dir /d1
COPY dir/ /d2/
COPY x*.txt /wild/
COPY --chown=nobody:nogroup --chmod=640 x1.txt /owned
COPY --chmod=u+x x2.txt /plusx
COPY x1.txt /newdir/
ADD arch.tar.gz /unpacked/
COPY arch.tar.gz /kept/
"""
    iid = env.build(c, df)
    assert iid is not None, env.error
    script = ("cat /d1/sub/f /d2/sub/f; ls /wild; stat -c '%u:%g %a' /owned; stat -c %a /plusx; "
              "cat /newdir/x1.txt; echo; cat /unpacked/inside/t.txt; echo; ls /kept")
    code, out = env.run(iid, "sh", "-c", script)
    assert code == 0, out
    assert out == "f\nf\nx1.txt\nx2.txt\n65534:65534 640\n744\n1\ntar\narch.tar.gz\n"
    (c / "alias").symlink_to("x1.txt")
    named = env.build(c, "FROM busybox\nCOPY alias /named/\nCOPY --from=busybox /bin/sh /named/\n")
    assert named is not None, env.error
    assert env.run(named, "sh", "-c", "cat /named/alias; test -L /named/alias || echo regular; ls /named") == \
        (0, "1regular\nalias\nsh\n")
    (c / "alias").unlink()
    ex = env.build(c, "FROM busybox\nCOPY --exclude=*.gz --exclude=**/sub . /ex/\n")
    assert ex is not None, env.error
    assert env.run(ex, "ls", "/ex") == (0, "Dockerfile\ndir\nx1.txt\nx2.txt\n")
    assert env.run(ex, "ls", "/ex/dir") == (0, "")
    bad = env.build(c, "FROM busybox\nCOPY x*.txt /notadir\n")
    assert bad is None and "must be a directory and end with a /" in (env.error or "")
    no_leftovers(env)


def test_errors_name_the_line_and_leave_nothing(env: Env, tmp_path: Path) -> None:
    c = tmp_path / "e"
    c.mkdir()
    assert env.build(c, "FROM busybox\nRUN true\nFROBNICATE now\n", tags=("bad:1",)) is None
    assert "line 3" in (env.error or "") and "unknown instruction: FROBNICATE" in (env.error or "")
    assert env.build(c, "FROM busybox\nRUN echo out; exit 3\n", tags=("bad:1",)) is None
    assert env.error == "The command '/bin/sh -c echo out; exit 3' returned a non-zero code: 3 (Dockerfile line 2)"
    assert "out\n" in env.text
    assert env.build(c, "FROM busybox\nCOPY nothere /x\n", tags=("bad:1",)) is None
    assert env.error == ("COPY failed: file not found in build context or excluded by .dockerignore: "
                         "stat nothere: file does not exist (Dockerfile line 2)")
    assert not env.images.exists("bad:1")
    assert env.build(c, "FROM nosuchimage\n") is None and "line 1" in (env.error or "")
    no_leftovers(env)


def test_context_tar_cannot_escape(env: Env, tmp_path: Path) -> None:
    data = tar_of([
        ("Dockerfile", b"FROM busybox\nCOPY link/passwd /stolen\nCOPY evil /evil\n"),
        ("../../evil", b"clamped"),
        ("link", "->/etc"),
    ])
    # /etc/passwd of the HOST must not be read: "link" resolves inside the context
    assert env.build_tar(data) is None
    assert "stat link/passwd: file does not exist" in (env.error or "")
    ok = env.build_tar(tar_of([("Dockerfile", b"FROM busybox\nCOPY evil /evil\n"), ("../../evil", b"clamped")]))
    assert ok is not None, env.error
    assert env.run(ok, "cat", "/evil") == (0, "clamped\n")  # the output helper ends a last partial line
    # a member written through a symlinked parent is refused
    bad = tar_of([("Dockerfile", b"FROM busybox\n"), ("l", "->/tmp"), ("l/planted", b"x")])
    assert env.build_tar(bad) is None and "parent is not a directory" in (env.error or "")
    assert not Path("/tmp/planted").exists()
    no_leftovers(env)


def test_squash_and_prune(env: Env, tmp_path: Path) -> None:
    c = tmp_path / "sq"
    c.mkdir()
    df = "FROM busybox\nRUN echo a > /a\nRUN echo b > /b && rm /a\nENV X=1\n"
    plain = env.build(c, df)
    squashed = env.build(c, df, squash=True)
    assert plain is not None and squashed is not None, env.error
    base_layers = len(env.images.get("busybox").diff_ids)
    assert len(env.images.get(plain).diff_ids) == base_layers + 2
    assert len(env.images.get(squashed).diff_ids) == base_layers + 1
    assert env.run(squashed, "sh", "-c", "cat /b; test -e /a || echo gone") == (0, "b\ngone\n")
    assert "X=1" in env.config(squashed)["config"]["Env"]
    entries, _ = env.builder.usage()
    assert entries > 0
    deleted, _reclaimed = env.builder.prune()
    assert plain in deleted and env.builder.usage()[0] == 0
    assert env.images.exists("busybox")


def test_concurrent_builds_share_the_builder(env: Env, tmp_path: Path) -> None:
    import threading

    from dockyard.builder.executor import BuildOptions

    results: dict[int, tuple[str | None, list[dict]]] = {}

    def one(n: int) -> None:
        c = tmp_path / f"c{n}"
        c.mkdir()
        steps = "".join(f"RUN echo {n}-{i} > /f{i}\n" for i in range(n + 1))
        (c / "Dockerfile").write_text(f"FROM busybox\n{steps}")
        msgs: list[dict] = []
        results[n] = (env.builder.build_dir(c, BuildOptions(tags=(f"conc:{n}",)), msgs.append), msgs)

    threads = [threading.Thread(target=one, args=(n,)) for n in (1, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n in (1, 3):
        iid, msgs = results[n]
        assert iid is not None and env.images.resolve(f"conc:{n}") == iid
        text = "".join(m.get("stream", "") for m in msgs)
        assert f"Step {n + 2}/{n + 2} : RUN echo {n}-{n} > /f{n}\n" in text
        assert env.run(iid, "cat", f"/f{n}") == (0, f"{n}-{n}\n")
    no_leftovers(env)
