"""RUN in the build executor (as root): mounts, network, heredoc scripts, user, workdir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from builder_exec_fixtures import Env, make_env, no_leftovers

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, busybox_rootfs: Path) -> Iterator[Env]:
    yield from make_env(tmp_path_factory, busybox_rootfs)


def test_run_mounts(env: Env, tmp_path: Path) -> None:
    c = tmp_path / "c"
    (c / "conf").mkdir(parents=True)
    (c / "conf" / "x.cfg").write_text("cfg\n")
    df = """\
FROM busybox
RUN --mount=type=cache,target=/cache echo -n x >> /cache/count && cat /cache/count > /seen
RUN --mount=type=bind,source=conf,target=/mnt/conf cat /mnt/conf/x.cfg > /from-bind
RUN --mount=type=tmpfs,target=/scratch touch /scratch/t && ls /scratch > /tmpfs-ls
RUN --mount=type=secret,id=tok cat /run/secrets/tok > /dev/null && echo secret-read > /s
"""
    iid = env.build(c, df, secrets={"tok": b"s3cret"})
    assert iid is not None, env.error
    code, out = env.run(iid, "sh", "-c", "cat /seen /from-bind /tmpfs-ls /s; ls /cache /mnt /scratch 2>&1; "
                        "grep -r s3cret / --exclude-dir=proc --exclude-dir=sys -l 2>/dev/null; true")
    assert code == 0
    lines = out.splitlines()
    assert lines[:3] == ["xcfg", "t", "secret-read"]  # /seen holds "x" without a newline
    # mount targets the runtime had to create are not part of the image, nor is the secret
    assert "No such file or directory" in out and "s3cret" not in out
    # the cache mount persists across builds (the step itself re-runs with --no-cache)
    iid2 = env.build(c, df, no_cache=True, secrets={"tok": b"s3cret"})
    assert iid2 is not None and env.run(iid2, "cat", "/seen")[1] == "xx\n"  # helper ends the line
    # a required secret that was not given fails the step, naming the line
    assert env.build(c, "FROM busybox\nRUN --mount=type=secret,id=nope,required cat /run/secrets/nope\n") is None
    assert "line 2" in (env.error or "")
    no_leftovers(env)


def test_run_network_shebang_user_workdir(env: Env, tmp_path: Path) -> None:
    c = tmp_path / "n"
    c.mkdir()
    df = """\
FROM busybox
RUN ls /sys/class/net > /net-default
RUN --network=host ls /sys/class/net > /net-host
RUN <<EOF
#!/bin/sh
echo "from a script: $0" > /script.txt
EOF
WORKDIR /made/by/workdir
RUN pwd > pwd.txt
USER nobody
RUN id -u > /tmp/uid
"""
    iid = env.build(c, df)
    assert iid is not None, env.error
    assert env.run(iid, "cat", "/net-default") == (0, "lo\n")
    # other tests create and delete interfaces meanwhile: compare what is stable
    host_ifaces = {p.name for p in Path("/sys/class/net").iterdir()}
    seen = set(env.run(iid, "cat", "/net-host")[1].split())
    assert (seen & host_ifaces) - {"lo"}
    assert env.run(iid, "cat", "/script.txt") == (0, "from a script: /dev/pipes/EOF\n")
    assert env.run(iid, "cat", "/made/by/workdir/pwd.txt") == (0, "/made/by/workdir\n")
    assert env.run(iid, "cat", "/tmp/uid") == (0, "65534\n")
    # WORKDIR alone creates the directory in the image
    only = env.build(c, "FROM busybox\nWORKDIR /only/here\n")
    assert only is not None and env.run(only, "pwd") == (0, "/only/here\n")
    no_leftovers(env)


def test_cancel_stops_a_running_step_and_cleans_up(env: Env, tmp_path: Path) -> None:
    from dockyard.builder.executor import BuildOptions, Cancelled

    c = tmp_path / "x"
    c.mkdir()
    (c / "Dockerfile").write_text("FROM busybox\nRUN echo started; sleep 600\n")
    seen: list[str] = []

    def emit(msg: dict) -> None:
        seen.append(msg.get("stream", ""))
        if msg.get("stream") == "started\n":
            raise Cancelled("client gone")

    assert env.builder.build_dir(c, BuildOptions(), emit) is None
    assert "started\n" in seen
    no_leftovers(env)
    state = env.root / "state"
    # no container record is left in the runtime's state dir (it may keep caches there)
    assert not state.exists() or [p.name for p in state.iterdir() if len(p.name) == 64] == []
