"""Dispatch-time values (ports, signals, chmod), Go durations, and the acceptance Dockerfile
taken through the whole front end."""

from __future__ import annotations

import signal

import pytest

from dockyard.builder.duration import parse_duration
from dockyard.builder.expand import expand_instruction
from dockyard.builder.instructions import Arg, Cmd, Copy, Env, Run, Workdir, parse_dockerfile
from dockyard.builder.scope import StageScope
from dockyard.builder.stages import plan
from dockyard.builder.values import exposed_ports, parse_chmod, parse_signal
from dockyard.errors import InvalidArgument


@pytest.mark.parametrize(
    ("specs", "keys"),
    [
        (["80"], ("80/tcp",)),
        (["80/udp", "80/tcp"], ("80/udp", "80/tcp")),
        (["8000-8002/UDP"], ("8000/udp", "8001/udp", "8002/udp")),
        (["127.0.0.1:8080:80", "53:53/sctp"], ("80/tcp", "53/sctp")),
        (["80", "80/tcp"], ("80/tcp",)),
    ],
)
def test_exposed_ports(specs: list[str], keys: tuple[str, ...]) -> None:
    assert exposed_ports(specs) == keys


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("abc", "invalid containerPort: abc"),
        ("80/icmp", "invalid proto: icmp"),
        ("70000", "invalid containerPort"),
        ("90-80", "invalid containerPort: 90-80"),
    ],
)
def test_exposed_port_errors(spec: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        exposed_ports([spec])


@pytest.mark.parametrize(
    ("raw", "num"),
    [
        ("SIGKILL", 9),
        ("KILL", 9),
        ("sigterm", 15),
        ("9", 9),
        ("SIGRTMIN+3", signal.SIGRTMIN + 3),
        ("SIGUSR1", int(signal.SIGUSR1)),
    ],
)
def test_parse_signal(raw: str, num: int) -> None:
    assert parse_signal(raw) == num


@pytest.mark.parametrize("raw", ["SIGNOPE", "0", "65", "", "RTMIN+99"])
def test_parse_signal_errors(raw: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid signal"):
        parse_signal(raw)


def test_parse_chmod() -> None:
    assert parse_chmod("755") == 0o755 and parse_chmod("0644") == 0o644
    assert (
        parse_chmod("u=rwX,go=rX") is None
        and parse_chmod("+x") is None
        and parse_chmod("g=u") is None
    )
    for bad in ("999", "u=q", "12345", ""):
        with pytest.raises(InvalidArgument, match="invalid chmod parameter"):
            parse_chmod(bad)


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0", 0),
        ("5s", 5_000_000_000),
        ("1m30s", 90_000_000_000),
        ("1.5h", 5_400_000_000_000),
        ("300ms", 300_000_000),
        ("10us", 10_000),
        ("10µs", 10_000),
        ("7ns", 7),
        ("-2s", -2_000_000_000),
        (".5s", 500_000_000),
        ("1h2m3.5s", 3_723_500_000_000),
    ],
)
def test_parse_duration(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("5", 'time: missing unit in duration "5"'),
        ("5x", 'time: unknown unit "x" in duration "5x"'),
        ("s", 'time: invalid duration "s"'),
        (".s", 'time: invalid duration ".s"'),
    ],
)
def test_parse_duration_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_duration(text)
    assert str(exc.value) == message


ACCEPTANCE = """\
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


def test_acceptance_dockerfile_front_to_back() -> None:
    df = parse_dockerfile(ACCEPTANCE)
    p = plan(df)
    assert [(s.base, s.deps) for s in p.stages] == [("busybox", ()), ("busybox", (0,))]
    assert p.order == (0, 1)
    final = p.stages[1].stage
    scope = StageScope({}, dict(p.global_args))
    seen = []
    for i in final.instructions:
        if isinstance(i, Arg):
            scope.declare(i)
        elif isinstance(i, Env):
            scope.set_env(expand_instruction(i, scope.lookup()))
        else:
            seen.append(expand_instruction(i, scope.lookup()))
    workdir, copy1, copy2, copy3, run, cmd = seen
    assert isinstance(workdir, Workdir) and workdir.path == "/app"
    assert isinstance(copy1, Copy) and (copy1.from_, copy1.sources, copy1.dest) == (
        "stage1",
        ("/built.txt",),
        "./",
    )
    assert p.stage_ref(copy1.from_) == 0
    assert (copy2.sources, copy2.dest, copy3.sources, copy3.dest) == (
        ("src/",),
        "./src/",
        (".",),
        "/ctx/",
    )
    assert isinstance(run, Run) and run.script() == ('echo "heredoc ran" > /app/heredoc.txt\n',)
    assert isinstance(cmd, Cmd) and not cmd.shell_form and cmd.cmd[0] == "sh"
    assert scope.env == {"GREETING": "hello"}


def test_acceptance_bad_instruction_names_line_3() -> None:
    with pytest.raises(InvalidArgument) as exc:
        parse_dockerfile("FROM busybox\nRUN true\nFROBNICATE now\n")
    assert str(exc.value) == "dockerfile parse error on line 3: unknown instruction: FROBNICATE"


@pytest.mark.parametrize(
    ("current", "wd", "result"),
    [
        ("/", "/a", "/a"),
        ("/a", "b", "/a/b"),
        ("/a/b", "c", "/a/b/c"),
        ("/a", "../x/./y/", "/x/y"),
        ("", "rel", "/rel"),
        ("/a", "//b", "/b"),
        ("/a", "/", "/"),
    ],
)
def test_normalize_workdir(current: str, wd: str, result: str) -> None:
    from dockyard.builder.values import normalize_workdir

    assert normalize_workdir(current, wd) == result


@pytest.mark.parametrize(
    ("src", "kind"),
    [
        ("https://example.com/archive.zip", "http"),
        ("http://x/y", "http"),
        ("git@github.com:user/repo.git", "git"),
        ("https://github.com/moby/buildkit.git#v0.10.1", "git"),
        ("git@git.example.com:foo/bar.git", "git"),
        ("./file.txt", "local"),
        ("*.png", "local"),
        ("git://host/repo", "git"),
    ],
)
def test_source_kind(src: str, kind: str) -> None:
    from dockyard.builder.values import source_kind

    assert source_kind(src) == kind


@pytest.mark.parametrize(
    ("src", "rel"),
    [
        ("file.txt", "file.txt"),
        ("/abs/x", "abs/x"),
        ("../something", "something"),
        ("something/", "something"),
        (".", "."),
        ("./", "."),
        ("/", "."),
        ("a/../../b", "b"),
        ("*.png", "*.png"),
    ],
)
def test_context_source(src: str, rel: str) -> None:
    from dockyard.builder.values import context_source

    assert context_source(src) == rel


@pytest.mark.parametrize(
    ("workdir", "dest", "result"),
    [
        ("/", "/abs/", "/abs/"),
        ("/", "/abs", "/abs"),
        ("/usr/src/app", "rel/", "/usr/src/app/rel/"),
        ("/app", "./", "/app/"),
        ("/app", ".", "/app/"),
        ("/app", "x/../y", "/app/y"),
        ("", "a", "/a"),
        ("/app", "/", "/"),
    ],
)
def test_copy_dest(workdir: str, dest: str, result: str) -> None:
    from dockyard.builder.values import copy_dest

    assert copy_dest(workdir, dest) == result
