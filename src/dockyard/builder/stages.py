"""Stages of a multi-stage Dockerfile and which of them a build needs.

``split_stages(dockerfile)`` cuts the instruction list at every FROM: the ARGs before the first
FROM are the meta (global) ARGs; anything else before it is an error. ``plan(dockerfile,
build_args, target)`` then

* expands every FROM image and ``--platform`` with the global ARGs (``base name ... should
  not be blank`` if the image expands to nothing);
* resolves references to other stages: ``FROM <earlier stage name>``, ``COPY --from=<name or
  index>`` and ``RUN --mount=...,from=<name or index>`` (names are case-insensitive; a name
  that is no stage is an image reference; an index must name an existing stage);
* rejects duplicate stage names and dependency cycles;
* picks the target (``--target`` name, default the last stage) and returns the stages it
  needs, dependencies first; unreachable stages are skipped, as BuildKit skips them.

Nothing here touches images or the disk.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from dockyard.builder.expand import Lexer
from dockyard.builder.instructions import Arg, Copy, Dockerfile, From, Instruction, Onbuild, Run
from dockyard.builder.scope import global_args
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

    def stage_ref(self, ref: str, current: int) -> int | None:
        """Resolve a ``--from`` value seen in stage ``current``: a stage index, or None (image)."""
        return _stage_ref(ref, [s.stage for s in self.stages], current)


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


def _stage_ref(ref: str, stages: list[Stage], current: int) -> int | None:
    if ref.isdigit() and ref.isascii():
        index = int(ref)
        if index >= len(stages):
            raise InvalidArgument(f"invalid stage index {index}")
        return index
    low = ref.lower()
    for st in stages:
        if st.name == low:
            return st.index
    return None


def _line_error(line: int, message: str) -> InvalidArgument:
    return InvalidArgument(f"dockerfile parse error on line {line}: {message}")


def _sources(instr: Instruction) -> list[str]:
    """The ``--from`` values an instruction reads from (ONBUILD triggers run elsewhere)."""
    if isinstance(instr, Copy) and instr.from_:
        return [instr.from_]
    if isinstance(instr, Run):
        return [m.from_ for m in instr.mounts if m.from_]
    if isinstance(instr, Onbuild):
        return []
    return []


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
    resolved: list[ResolvedStage] = []
    for st in stages:
        f = st.from_
        if st.name is not None:
            if st.name in names:
                raise _line_error(f.line, f'duplicate stage name "{st.name}"')
        try:
            base = lex.process_word(f.image, globals_)
            plat = lex.process_word(f.platform, globals_) if f.platform is not None else None
        except InvalidArgument as err:
            raise _line_error(f.line, str(err)) from None
        if base == "":
            raise _line_error(f.line, f"base name ({f.image}) should not be blank")
        base_stage = names.get(base.lower())
        deps: list[int] = [] if base_stage is None else [base_stage]
        for instr in st.instructions:
            for ref in _sources(instr):
                try:
                    expanded = lex.process_word(ref, globals_)
                    idx = _stage_ref(expanded, list(stages), st.index)
                except InvalidArgument as err:
                    raise _line_error(instr.line, str(err)) from None
                if idx == st.index:
                    raise _line_error(
                        instr.line, f"circular dependency detected on stage: {st.display()}"
                    )
                if idx is not None and idx not in deps:
                    deps.append(idx)
        if st.name is not None:
            names[st.name] = st.index
        resolved.append(ResolvedStage(st, base, base_stage, plat, tuple(deps)))
    if target:
        low = target.lower()
        if low not in names:
            raise InvalidArgument(f"failed to reach build target {target} in Dockerfile")
        target_index = names[low]
    else:
        target_index = len(stages) - 1
    for i in range(len(resolved)):
        _order(resolved, i)  # every stage is checked for cycles, needed or not
    order = _order(resolved, target_index)
    return BuildPlan(
        meta_args=meta,
        global_args=tuple(sorted(globals_.items())),
        stages=tuple(resolved),
        target=target_index,
        order=order,
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
                st.from_.line, f"circular dependency detected on stage: {st.display()}"
            )
        state[i] = "active"
        for d in sorted(stages[i].deps):
            visit(d)
        state[i] = "done"
        out.append(i)

    visit(target)
    return tuple(out)
