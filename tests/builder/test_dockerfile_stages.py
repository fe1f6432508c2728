"""Stages, targets, stage references and ARG scoping (the reference's examples)."""

from __future__ import annotations

import pytest

from dockyard.builder.expand import expand_instruction
from dockyard.builder.instructions import Arg, Env, Instruction, parse_dockerfile
from dockyard.builder.scope import PROXY_ARGS, StageScope, global_args, platform_args
from dockyard.builder.stages import plan, split_stages
from dockyard.errors import InvalidArgument

MULTI = """\
ARG BASE=alpine
FROM $BASE AS base
RUN setup

FROM base AS dev
RUN dev-tools

FROM golang AS build
COPY . /src
RUN go build -o /app

FROM scratch AS unused
COPY --from=build /app /x

FROM busybox AS assets

FROM base AS prod
COPY --from=build /app /app
RUN --mount=type=bind,from=assets,target=/a cp -r /a /srv
"""


def test_split_stages() -> None:
    meta, stages = split_stages(parse_dockerfile(MULTI))
    assert [a.name for a in meta] == ["BASE"]
    assert [s.name for s in stages] == ["base", "dev", "build", "unused", "assets", "prod"]
    assert [len(s.instructions) for s in stages] == [1, 1, 2, 1, 0, 2]


def test_plan_skips_unused_stages() -> None:
    p = plan(parse_dockerfile(MULTI))  # default target: the last stage
    assert p.target == 5
    names = [p.stages[i].stage.name for i in p.order]
    assert names == ["base", "build", "assets", "prod"]  # dev and unused are skipped
    assert p.stages[0].base == "alpine"
    assert p.stages[1].base_stage == 0 and p.stages[1].deps == (0,)
    assert p.stages[5].deps == (0, 2, 4)


def test_plan_target_and_build_args() -> None:
    p = plan(parse_dockerfile(MULTI), {"BASE": "debian:12"}, target="DEV")
    assert [p.stages[i].stage.name for i in p.order] == ["base", "dev"]
    assert p.stages[0].base == "debian:12"
    with pytest.raises(InvalidArgument, match='^target stage "nope" could not be found$'):
        plan(parse_dockerfile(MULTI), target="nope")
    with pytest.raises(
        InvalidArgument, match=r'target stage "prd" could not be found \(did you mean prod\?\)'
    ):
        plan(parse_dockerfile(MULTI), target="prd")


def test_stage_refs_by_index_and_images() -> None:
    df = parse_dockerfile(
        "FROM alpine\nRUN a\nFROM scratch\nCOPY --from=0 /a /a\nCOPY --from=nginx:latest /etc/nginx/nginx.conf /n\n"
    )
    p = plan(df)
    assert p.order == (0, 1)
    assert p.stages[1].deps == (0,)
    assert p.stage_ref("0") == 0
    assert p.stage_ref("nginx:latest") is None
    assert p.mount_ref("0") is None  # mounts name stages by name only
    with pytest.raises(InvalidArgument, match="invalid stage index 7"):
        p.stage_ref("7")
    with pytest.raises(InvalidArgument, match="invalid stage index -1"):
        p.stage_ref("-1")


def test_from_only_names_earlier_stages_as_bases() -> None:
    p = plan(parse_dockerfile("FROM later\nFROM alpine AS later\n"))
    assert p.stages[0].base_stage is None and p.stages[0].base == "later"
    # the expanded base is compared with the (lower-cased) stage names as is
    p = plan(parse_dockerfile("FROM alpine AS base\nFROM Base\nFROM base\n"))
    assert p.stages[1].base_stage is None and p.stages[2].base_stage == 0


def test_later_stage_refs_only_fail_when_built() -> None:
    text = "FROM a AS one\nCOPY --from=two /x /y\nFROM b AS two\nFROM c AS three\n"
    assert plan(parse_dockerfile(text)).order == (2,)  # "one" is not built: no error
    with pytest.raises(InvalidArgument) as exc:
        plan(parse_dockerfile(text), target="one")
    assert str(exc.value) == (
        'dockerfile parse error on line 2: cannot copy from stage "two", it needs to be defined '
        'before current stage "one"'
    )
    text = "FROM a AS first\nRUN --mount=from=later,target=/m true\nFROM b AS later\n"
    with pytest.raises(InvalidArgument, match='line 2: cannot mount from stage "later" to "/m"'):
        plan(parse_dockerfile(text), target="first")
    # the first stage is not the default target; build it explicitly by index-free name
    p = plan(
        parse_dockerfile("FROM a AS x\nRUN --mount=from=0,target=/m true\nFROM b\n"), target="x"
    )
    assert p.stages[0].deps == ()  # mounts name stages by name only: "0" is an image


def test_copy_from_rejects_variables() -> None:
    with pytest.raises(
        InvalidArgument, match="line 3: variable expansion is not supported for --from"
    ):
        plan(parse_dockerfile("ARG S=build\nFROM a AS build\nCOPY --from=$S /a /b\n"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("RUN x\nFROM a", "dockerfile parse error on line 1: no build stage in current context"),
        ("ARG A", "dockerfile contains no stages to build"),
        ("ARG E\nFROM $E", "base name ($E) should not be blank"),
        ("FROM a AS x\nCOPY --from=x /a /b", "circular dependency detected on stage: x"),
        (
            "FROM a AS x\nCOPY --from=y /a /b\nFROM b AS y\nCOPY --from=x /a /b",
            "circular dependency detected",
        ),
        ("FROM a\nCOPY --from=3 /a /b", "line 2: invalid stage index 3"),
        ("FROM a\nCOPY --from=+1 /a /b", "line 2: invalid stage index 1"),
        ("FROM ${A", "line 1: failed to process"),
    ],
)
def test_plan_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        plan(parse_dockerfile(text))
    assert message in str(exc.value)


def test_from_platform_and_automatic_platform_args() -> None:
    df = parse_dockerfile(
        "FROM --platform=$BUILDPLATFORM golang AS build\nFROM alpine:${TARGETARCH}\n"
    )
    p = plan(df, platform=platform_args("linux/arm/v7", "linux/amd64"))
    assert p.stages[0].platform == "linux/amd64"
    assert p.stages[1].base == "alpine:arm"
    assert platform_args("linux/arm/v7")["TARGETVARIANT"] == "v7"
    assert platform_args("linux/amd64")["BUILDVARIANT"] == ""
    with pytest.raises(InvalidArgument):
        platform_args("linux")


# --- ARG scoping -----------------------------------------------------------------------------


def run_stage(text: str, build_args: dict[str, str], stage: int = 0) -> list[tuple[str, object]]:
    """Dispatch a stage's ARG/ENV and expand the rest, as the build executor will."""
    df = parse_dockerfile(text)
    p = plan(df, build_args)
    scope = StageScope(build_args, dict(p.global_args))
    seen: list[tuple[str, object]] = []
    instructions: tuple[Instruction, ...] = p.stages[stage].stage.instructions
    for i in instructions:
        if isinstance(i, Arg):
            scope.declare(i)
        elif isinstance(i, Env):
            scope.set_env(expand_instruction(i, scope.lookup()))
        else:
            seen.append((type(i).__name__, expand_instruction(i, scope.lookup())))
            seen.append(("run_env", scope.run_env()))
    return seen


def test_arg_scope_from_its_line_on() -> None:
    text = "FROM busybox\nUSER ${username:-some_user}\nARG username\nUSER $username\n"
    out = run_stage(text, {"username": "what_user"})
    users = [i.user for kind, i in out if kind == "User"]
    assert users == ["some_user", "what_user"]


def test_env_overrides_arg() -> None:
    text = "FROM ubuntu\nARG CONT_IMG_VER\nENV CONT_IMG_VER=v1.0.0\nRUN echo $CONT_IMG_VER\n"
    out = run_stage(text, {"CONT_IMG_VER": "v2.0.1"})
    assert out[1][1]["CONT_IMG_VER"] == "v1.0.0"


@pytest.mark.parametrize(
    ("args", "value"), [({"CONT_IMG_VER": "v2.0.1"}, "v2.0.1"), ({}, "v1.0.0")]
)
def test_env_defaulting_from_arg(args: dict[str, str], value: str) -> None:
    text = "FROM ubuntu\nARG CONT_IMG_VER\nENV CONT_IMG_VER=${CONT_IMG_VER:-v1.0.0}\nRUN echo $CONT_IMG_VER\n"
    assert run_stage(text, args)[1][1]["CONT_IMG_VER"] == value


def test_global_arg_needs_redeclaration_in_stage() -> None:
    text = "ARG VERSION=latest\nFROM busybox:$VERSION\nWORKDIR /$VERSION\nARG VERSION\nWORKDIR /$VERSION\n"
    p = plan(parse_dockerfile(text))
    assert p.stages[0].base == "busybox:latest"
    out = run_stage(text, {})
    assert [i.path for kind, i in out if kind == "Workdir"] == ["/", "/latest"]
    out = run_stage(text, {"VERSION": "1.36"})
    assert [i.path for kind, i in out if kind == "Workdir"] == ["/", "/1.36"]


def test_arg_default_expanded_with_stage_variables() -> None:
    text = "FROM a\nENV P=/opt\nARG DIR=$P/app\nWORKDIR $DIR\n"
    assert run_stage(text, {})[0][1].path == "/opt/app"


def test_declared_but_unset_arg_is_unset() -> None:
    text = "FROM a\nARG X\nWORKDIR /${X-unset}\n"
    assert run_stage(text, {})[0][1].path == "/unset"
    assert run_stage(text, {"X": ""})[0][1].path == "/"


def test_global_args_chain_and_build_args_win() -> None:
    meta, _ = split_stages(parse_dockerfile("ARG A=1\nARG B=${A}2\nARG C\nFROM x"))
    assert global_args(meta, {}) == {"A": "1", "B": "12"}
    assert global_args(meta, {"A": "9", "C": "c"}) == {"A": "9", "B": "92", "C": "c"}
    plat = platform_args("linux/amd64")
    g = global_args(meta, {}, plat)
    assert g["TARGETPLATFORM"] == "linux/amd64" and g["B"] == "12"


def test_proxy_args_reach_run_only() -> None:
    text = "FROM a\nRUN x\nWORKDIR /${HTTP_PROXY}\n"
    out = run_stage(text, {"HTTP_PROXY": "http://p:3128", "no_proxy": "localhost"})
    env = out[1][1]
    assert env["HTTP_PROXY"] == env["http_proxy"] == "http://p:3128"
    assert env["no_proxy"] == env["NO_PROXY"] == "localhost"
    assert out[2][1].path == "/"  # not expanded in instructions unless declared
    assert "HTTP_PROXY" in PROXY_ARGS


def test_env_pairs_see_previous_values_and_child_scope() -> None:
    scope = StageScope({}, {})
    (e1,) = parse_dockerfile("FROM a\nENV abc=hello").instructions[1:]
    (e2,) = parse_dockerfile("FROM a\nENV abc=bye def=$abc").instructions[1:]
    (e3,) = parse_dockerfile("FROM a\nENV ghi=$abc").instructions[1:]
    for e in (e1, e2, e3):
        scope.set_env(expand_instruction(e, scope.lookup()))
    assert scope.env == {"abc": "bye", "def": "hello", "ghi": "bye"}
    child = scope.child()
    assert child.lookup()["ghi"] == "bye"
    assert scope.unused_build_args(["A"]) == []
    assert StageScope({"A": "1", "B": "2", "HTTP_PROXY": "x"}, {}).unused_build_args(["A"]) == ["B"]


def test_arg_after_env_wins_for_later_instructions_but_not_in_image_config() -> None:
    scope = StageScope.from_image({}, {}, ["X=1", "HOME=/root"])
    df = parse_dockerfile("FROM a\nARG X=2\nENV Y=$X\n")
    arg, env = df.instructions[1:]
    scope.declare(arg)
    scope.set_env(expand_instruction(env, scope.lookup()))
    assert scope.lookup()["X"] == "2" and scope.lookup()["Y"] == "2"
    assert scope.image_env() == [
        "X=1",
        "HOME=/root",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "Y=2",
    ]


def test_base_image_path_is_kept_and_names_are_not_expanded() -> None:
    scope = StageScope.from_image({"$N": "v"}, {}, ["PATH=/bin"])
    assert scope.lookup()["PATH"] == "/bin"
    (arg,) = parse_dockerfile("FROM a\nARG $N").instructions[1:]
    scope.declare(arg)
    assert scope.lookup()["$N"] == "v" and scope.declared == ["$N"]


def test_build_arg_value_is_not_expanded() -> None:
    scope = StageScope({"A": "$HOME"}, {})
    (arg,) = parse_dockerfile("FROM a\nARG A=x").instructions[1:]
    scope.declare(arg)
    assert scope.lookup()["A"] == "$HOME"
    meta, _ = split_stages(parse_dockerfile("ARG B=${A}\nARG A\nFROM x"))
    assert global_args(meta, {"A": "$Q"}) == {"B": "", "A": "$Q"}


def test_arg_default_errors_name_the_line() -> None:
    scope = StageScope({}, {})
    (arg,) = parse_dockerfile("FROM a\nARG A=${oops").instructions[1:]
    with pytest.raises(
        InvalidArgument, match="^dockerfile parse error on line 2: failed to process"
    ):
        scope.declare(arg)
    meta, _ = split_stages(parse_dockerfile("ARG A=${oops\nFROM x"))
    with pytest.raises(InvalidArgument, match="line 1: failed to process"):
        global_args(meta, {})


def test_duplicate_stage_names_warn_and_the_later_one_wins() -> None:
    text = "FROM a AS x\nFROM x AS y\nFROM b AS x\nFROM c\nCOPY --from=x /a /b\n"
    p = plan(parse_dockerfile(text))
    assert p.warnings == ('line 3: Duplicate stage name "x", stage names should be unique',)
    assert p.stages[1].base_stage == 0  # FROM sees the stages named so far
    assert p.stages[3].deps == (2,)  # --from sees the final names
    assert p.stage_ref("x") == 2
    assert plan(parse_dockerfile(text), target="x").order == (2,)


def test_proxy_args_case_insensitive_and_stage_values_win() -> None:
    scope = StageScope(
        {"Https_Proxy": "http://h", "all_proxy": "socks://s"}, {}, {"ALL_PROXY": "mine"}
    )
    env = scope.run_env()
    assert env["HTTPS_PROXY"] == env["https_proxy"] == "http://h"
    assert env["ALL_PROXY"] == "mine" and env["all_proxy"] == "socks://s"
    assert scope.unused_build_args([]) == []
