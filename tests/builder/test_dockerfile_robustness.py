"""Malformed input anywhere in the front end ends in InvalidArgument, never another exception."""

from __future__ import annotations

import random

import pytest

from dockyard.builder.config import ConfigBuilder
from dockyard.builder.dockerignore import PatternMatcher, read_patterns
from dockyard.builder.expand import Lexer, expand_instruction
from dockyard.builder.instructions import Arg, Env, parse_dockerfile
from dockyard.builder.mounts import parse_mount
from dockyard.builder.scope import StageScope
from dockyard.builder.stages import plan
from dockyard.builder.values import exposed_ports, parse_chmod, parse_signal
from dockyard.errors import InvalidArgument

BASE = (
    "ARG A=1\nFROM a AS b\nRUN x\nFROM b AS c\nARG A\nENV X=$A\nCOPY --from=b /a /b\nRUN --mount=from=b,target=/m x\n"
    "EXPOSE $A 80\nVOLUME /v\nUSER u\nWORKDIR w\nSTOPSIGNAL SIGTERM\nHEALTHCHECK --interval=1s CMD x\n"
    'LABEL a=b\nCMD x\nENTRYPOINT ["y"]\nSHELL ["sh","-c"]\nONBUILD RUN z\nRUN <<EOF\nhi\nEOF\n'
    "COPY <<-EOT /f\n\t$X\n\tEOT\n"
)
PIECES = [*" \\\"'\n#<-=[]`\tEOF${}:,\r%/?*", "<<EOF", "\nEOF\n", "RUN ", "COPY ", "--from=",
          "--mount=type=cache,target=/x", "ONBUILD ", "\\\n", "<<-EOF", "${A:-x}", "${A#*}",
          "${A/x/y}", "ARG A=1\n", "FROM a AS b\n", "EXPOSE 80\n", "--chmod=", "--link", "0"]  # fmt: skip


def run_front_end(text: str, arg: str) -> None:
    df = parse_dockerfile(text)
    p = plan(df, {"A": arg}, platform={"TARGETPLATFORM": "linux/amd64"})
    for i in p.order:
        scope = StageScope.from_image({}, dict(p.global_args))
        cb = ConfigBuilder({})
        for instr in p.stages[i].stage.instructions:
            if isinstance(instr, Arg):
                scope.declare(instr)
                continue
            e = expand_instruction(instr, scope.lookup())
            if isinstance(e, Env):
                scope.set_env(e)
            cb.apply(e, scope.lookup())


@pytest.mark.parametrize("seed", range(200))
def test_mutated_dockerfiles_only_raise_invalid_argument(seed: int) -> None:
    rng = random.Random(seed)
    text = BASE
    for _ in range(rng.randint(1, 8)):
        pos = rng.randint(0, len(text))
        if rng.random() < 0.3:
            text = text[:pos] + text[pos + 1 :]
        else:
            text = text[:pos] + rng.choice(PIECES) + text[pos:]
    try:
        run_front_end(text, rng.choice(["1", "", "$x", "a b"]))
    except InvalidArgument as err:
        assert "line" in str(err) or "no stages" in str(err) or "instructions" in str(err)


def test_unmutated_base_runs() -> None:
    run_front_end(BASE, "1")


ALPHABET = [*"ab$\\{}:-+?#%/'\"* []^!.\t\n=,0123456789sm", "${", "${A", "A}", "**", "[^", "\\*"]


@pytest.mark.parametrize("seed", range(300))
def test_value_parsers_only_raise_invalid_argument(seed: int) -> None:
    rng = random.Random(seed)
    s = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 14)))
    calls = [
        lambda: Lexer(rng.choice(["\\", "`"]), skip_unset=rng.random() < 0.3).process_words(
            s, {"A": "x y"}
        ),
        lambda: PatternMatcher(read_patterns(s)).matches("a/b"),
        lambda: parse_mount(s),
        lambda: exposed_ports([s]),
        lambda: parse_signal(s),
        lambda: parse_chmod(s),
    ]
    for call in calls:
        try:
            call()
        except InvalidArgument:
            pass
