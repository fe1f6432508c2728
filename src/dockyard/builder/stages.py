"""Stages of a multi-stage Dockerfile and which of them a build needs.

``split_stages(dockerfile)`` cuts the instruction list at every FROM: the ARGs before the first
FROM are the meta (global) ARGs; anything else before it is an error. ``plan(dockerfile,
build_args, target)`` then

* expands every FROM image and ``--platform`` with the global ARGs (``base name ... should
  not be blank`` if the image expands to nothing);
* resolves references to other stages: ``FROM <earlier stage name>`` (exact, after
  expansion), ``COPY --from=<name or index>`` (no variables allowed there) and ``RUN
  --mount=...,from=<name>``; a name that is no stage is an image reference; an index must
  name an existing stage;
* rejects dependency cycles and (for the stages it builds) copies or mounts from a stage
  defined later in the file, since stages are dispatched in order; a duplicate stage name is
  only a warning (the later stage answers to it afterwards);
* picks the target (``--target`` name, default the last stage) and returns the stages it
  needs, dependencies first; unreachable stages are skipped, as BuildKit skips them.

Nothing here touches images or the disk.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from dockyard.builder.expand import Lexer
from dockyard.builder.instructions import Arg, Copy, Dockerfile, From, Instruction, Run
from dockyard.builder.scope import global_args
from dockyard.builder.suggest import suggest as _suggest
from dockyard.errors import InvalidArgument

SCRATCH = "scratch"


@dataclass(frozen=True)
class Stage:
    index: int
    from_: From  # as written (unexpanded)
    instructions: tuple[Instruction, ...]  # after the FROM

    @property
    def name(self) -> str | None:
        return self.from_.name

    def display(self) -> str:
        return self.name if self.name is not None else str(self.index)


@dataclass(frozen=True)
class ResolvedStage:
    stage: Stage
    base: str  # the expanded image reference, or the base stage's name
    base_stage: int | None  # index of the stage this one is built FROM, if any
    platform: str | None  # expanded --platform
    deps: tuple[int, ...]  # stages needed before this one (base and --from sources)


@dataclass(frozen=True)
class BuildPlan:
    meta_args: tuple[Arg, ...]
    global_args: tuple[tuple[str, str], ...]
    stages: tuple[ResolvedStage, ...]  # every stage, in file order
    target: int  # index of the stage whose result is the image
    order: tuple[int, ...]  # the stages to build, dependencies first, target last
    warnings: tuple[str, ...] = ()

    def stage_ref(self, ref: str) -> int | None:
        """Resolve ``COPY --from=<ref>``: a stage index (by name or number), or None (image)."""
        return _stage_ref(ref, [s.stage for s in self.stages])

    def mount_ref(self, ref: str) -> int | None:
        """Resolve ``RUN --mount=from=<ref>``: a stage index (by name only), or None (image)."""
        return _stage_ref(ref, [s.stage for s in self.stages], by_index=False)


def split_stages(df: Dockerfile) -> tuple[tuple[Arg, ...], tuple[Stage, ...]]:
    meta: list[Arg] = []
    stages: list[Stage] = []
    current: From | None = None
    body: list[Instruction] = []
    for instr in df.instructions:
        if isinstance(instr, From):
            if current is not None:
                stages.append(Stage(len(stages), current, tuple(body)))
            current, body = instr, []
        elif current is None:
            if isinstance(instr, Arg):
                meta.append(instr)
            else:
                raise InvalidArgument(
                    f"dockerfile parse error on line {instr.line}: no build stage in current context"
                )
        else:
            body.append(instr)
    if current is None:
        raise InvalidArgument("dockerfile contains no stages to build")
    stages.append(Stage(len(stages), current, tuple(body)))
    return tuple(meta), tuple(stages)


_INDEX = re.compile(r"[+-]?[0-9]+")


def _stage_ref(ref: str, stages: list[Stage], by_index: bool = True) -> int | None:
    """A ``--from`` value as a stage index (the last stage of that name wins), or None."""
    if by_index and _INDEX.fullmatch(ref):  # strconv.Atoi
        index = int(ref)
        if index < 0 or index >= len(stages):
            raise InvalidArgument(f"invalid stage index {index}")
        return index
    low = ref.lower()
    for st in reversed(stages):
        if st.name == low:
            return st.index
    return None


def _line_error(line: int, message: str) -> InvalidArgument:
    return InvalidArgument(f"dockerfile parse error on line {line}: {message}")


def _stage_name(st: Stage) -> str:
    return st.name if st.name is not None else f"stage-{st.index}"


_NO_FROM_EXPANSION = (
    "variable expansion is not supported for --from, define a new stage with FROM using ARG "
    "from global scope as a workaround"
)


@dataclass(frozen=True)
class _Ref:
    index: int
    line: int
    kind: str  # "copy" | "mount"
    target: str  # mount target, for the message


def _refs(st: Stage, stages: list[Stage], escape: str) -> list[_Ref]:
    """Stages that ``st``'s instructions read from (COPY --from, RUN --mount from=)."""
    out: list[_Ref] = []
    lex = Lexer(escape)
    for instr in st.instructions:
        if isinstance(instr, Copy) and instr.from_:
            try:
                if lex.process_word(instr.from_, {}) != instr.from_:
                    raise InvalidArgument(_NO_FROM_EXPANSION)
                idx = _stage_ref(instr.from_, stages)
            except InvalidArgument as err:
                raise _line_error(instr.line, str(err)) from None
            if idx is not None:
                out.append(_Ref(idx, instr.line, "copy", ""))
        elif isinstance(instr, Run):
            for m in instr.mounts:
                # mounts name stages only by name (BuildKit's detectRunMount); no index
                idx = _stage_ref(m.from_, stages, by_index=False) if m.from_ else None
                if idx is not None:
                    out.append(_Ref(idx, instr.line, "mount", m.target))
    return out


def plan(
    df: Dockerfile,
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
    platform: Mapping[str, str] | None = None,
) -> BuildPlan:
    build_args = dict(build_args or {})
    meta, stages = split_stages(df)
    globals_ = global_args(meta, build_args, platform, df.escape)
    lex = Lexer(df.escape)
    names: dict[str, int] = {}
    warnings: list[str] = []
    resolved: list[ResolvedStage] = []
    for st in stages:
        f = st.from_
        try:
            base = lex.process_word(f.image, globals_)
        except InvalidArgument as err:
            raise _line_error(f.line, str(err)) from None
        if base == "":
            raise _line_error(f.line, f"base name ({f.image}) should not be blank")
        plat = None
        if f.platform is not None:
            try:
                plat = lex.process_word(f.platform, globals_)
            except InvalidArgument as err:
                raise _line_error(
                    f.line, f"failed to process arguments for platform {f.platform}: {err}"
                ) from None
            if plat == "":
                raise _line_error(f.line, f"empty platform value from expression {f.platform}")
        # BuildKit looks the expanded base up among the stages named so far, case-sensitively
        # against their lower-cased names.
        base_stage = names.get(base)
        if st.name is not None:
            if st.name in names:
                # BuildKit only warns (lint rule DuplicateStageName); the later stage wins
                warnings.append(
                    f'line {f.line}: Duplicate stage name "{st.name}", stage names should be unique'
                )
            names[st.name] = st.index
        deps: list[int] = [] if base_stage is None else [base_stage]
        for ref in _refs(st, list(stages), df.escape):
            if ref.index == st.index:
                raise _line_error(
                    ref.line, f"circular dependency detected on stage: {_stage_name(st)}"
                )
            if ref.index not in deps:
                deps.append(ref.index)
        resolved.append(ResolvedStage(st, base, base_stage, plat, tuple(deps)))
    if target:
        low = target.lower()
        if low not in names:
            message = f'target stage "{target}" could not be found'
            raise InvalidArgument(_suggest(message, target, list(names), True))
        target_index = names[low]
    else:
        target_index = len(stages) - 1
    for i in range(len(resolved)):
        _order(resolved, i)  # every stage is checked for cycles, needed or not
    order = _order(resolved, target_index)
    for i in order:
        st = resolved[i].stage
        for ref in _refs(st, list(stages), df.escape):
            if ref.index > st.index:
                # stages are dispatched in file order: a later one does not exist yet
                src = _stage_name(stages[ref.index])
                if ref.kind == "copy":
                    msg = (
                        f'cannot copy from stage "{src}", it needs to be defined before '
                        f'current stage "{_stage_name(st)}"'
                    )
                else:
                    msg = (
                        f'cannot mount from stage "{src}" to "{ref.target}", stage needs to be '
                        "defined before current command"
                    )
                raise _line_error(ref.line, msg)
    return BuildPlan(
        meta_args=meta,
        global_args=tuple(sorted(globals_.items())),
        stages=tuple(resolved),
        target=target_index,
        order=order,
        warnings=tuple(warnings),
    )


def _order(stages: list[ResolvedStage], target: int) -> tuple[int, ...]:
    """Dependencies-first order of the stages reachable from ``target``; cycles are errors."""
    out: list[int] = []
    state: dict[int, str] = {}

    def visit(i: int) -> None:
        if state.get(i) == "done":
            return
        if state.get(i) == "active":
            st = stages[i].stage
            raise _line_error(
                st.from_.line, f"circular dependency detected on stage: {_stage_name(st)}"
            )
        state[i] = "active"
        for d in sorted(stages[i].deps):
            visit(d)
        state[i] = "done"
        out.append(i)

    visit(target)
    return tuple(out)
