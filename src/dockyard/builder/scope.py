"""Build-argument scoping: which variables an instruction sees, as BuildKit decides it.

* Global scope (before the first FROM): the automatic platform ARGs (TARGETPLATFORM, TARGETOS,
  TARGETARCH, TARGETVARIANT, BUILDPLATFORM, BUILDOS, BUILDARCH, BUILDVARIANT) then the meta
  ARGs in order; a meta ARG takes its ``--build-arg`` value if given, else its default
  expanded with the globals declared before it. Global values are usable only in FROM lines
  (image and ``--platform``) and as the value of a bare ``ARG name`` re-declared in a stage.
* Stage scope: starts empty (plus what the base stage had, when FROM names an earlier stage,
  and the base image's ENV). ``ARG name[=default]`` declares ``name`` from that line on:
  ``--build-arg`` value, else the default expanded with the stage's variables so far, else the
  global value of the same name, else declared-but-unset. ENV values win over ARG values of the
  same name, whatever their order.
* Predefined proxy ARGs (HTTP_PROXY, https_proxy, NO_PROXY...) reach RUN's environment when
  given as build args, without an ARG line; they are not expanded in instructions unless
  declared.

Lifecycle: ``global_args(...)`` once per build; one :class:`StageScope` per stage, fed every
ARG/ENV instruction in order (``declare``/``set_env``); ``lookup()`` is the mapping to pass to
``expand.expand_instruction``; ``run_env()`` the environment for a RUN step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from dockyard.builder.expand import Lexer
from dockyard.builder.instructions import Arg, Env

PROXY_ARGS = (
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
    "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
)  # fmt: skip

PLATFORM_ARGS = (
    "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT",
    "BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT",
)  # fmt: skip


def platform_args(target: str, build: str | None = None) -> dict[str, str]:
    """The automatic platform ARGs for ``os/arch[/variant]`` target and build platforms."""
    out: dict[str, str] = {}
    for prefix, plat in (("TARGET", target), ("BUILD", build or target)):
        parts = plat.split("/")
        if len(parts) < 2 or not all(parts):
            from dockyard.errors import InvalidArgument

            raise InvalidArgument(f"invalid platform {plat!r}: want os/arch[/variant]")
        out[prefix + "PLATFORM"] = plat
        out[prefix + "OS"] = parts[0]
        out[prefix + "ARCH"] = parts[1]
        out[prefix + "VARIANT"] = parts[2] if len(parts) > 2 else ""
    return out


def global_args(
    meta_args: Iterable[Arg],
    build_args: Mapping[str, str],
    platform: Mapping[str, str] | None = None,
    escape: str = "\\",
) -> dict[str, str]:
    """Values of the global scope. Declared-but-unset meta ARGs are absent."""
    values: dict[str, str] = dict(platform or {})
    lex = Lexer(escape)
    for instr in meta_args:
        for spec in instr.args:
            name = lex.process_word(spec.name, values)
            if name in build_args:
                values[name] = build_args[name]
            elif spec.default is not None:
                values[name] = lex.process_word(spec.default, values)
    return values


class StageScope:
    """The variables of one stage while its instructions are dispatched in order."""

    def __init__(
        self,
        build_args: Mapping[str, str],
        globals_: Mapping[str, str],
        env: Mapping[str, str] | None = None,
        args: Mapping[str, str] | None = None,
        escape: str = "\\",
    ) -> None:
        self.build_args = dict(build_args)
        self.globals = dict(globals_)
        self.env: dict[str, str] = dict(env or {})
        self.args: dict[str, str] = dict(args or {})
        self.declared: set[str] = set(self.args)
        self.escape = escape

    def lookup(self) -> dict[str, str]:
        """What ``$name`` means at this point: ENV over ARG."""
        merged = dict(self.args)
        merged.update(self.env)
        return merged

    def declare(self, instr: Arg) -> None:
        """Apply an in-stage ARG instruction (unexpanded, as parsed)."""
        lex = Lexer(self.escape)
        for spec in instr.args:
            name = lex.process_word(spec.name, self.lookup())
            self.declared.add(name)
            if name in self.build_args:
                self.args[name] = self.build_args[name]
            elif spec.default is not None:
                self.args[name] = lex.process_word(spec.default, self.lookup())
            elif name in self.globals:
                self.args[name] = self.globals[name]

    def set_env(self, instr: Env) -> None:
        """Apply an ENV instruction (unexpanded): every pair sees the values before it."""
        lex = Lexer(self.escape)
        before = self.lookup()
        for k, v in instr.pairs:
            self.env[lex.process_word(k, before)] = lex.process_word(v, before)

    def run_env(self) -> dict[str, str]:
        """Environment of a RUN step: ENV, declared ARG values, and proxy build args."""
        out = self.lookup()
        for name in PROXY_ARGS:
            if name in self.build_args and name not in out:
                out[name] = self.build_args[name]
        return out

    def child(self) -> StageScope:
        """Scope for a stage built ``FROM`` this one: it inherits ENV and ARG values."""
        return StageScope(self.build_args, self.globals, self.env, self.args, self.escape)

    def unused_build_args(self, all_declared: Iterable[str]) -> list[str]:
        """Build args no ARG consumed (Docker warns about them); proxies and platform excluded."""
        used = set(all_declared)
        return sorted(
            k
            for k in self.build_args
            if k not in used and k not in PROXY_ARGS and k not in PLATFORM_ARGS
        )
