"""Build-argument scoping: which variables an instruction sees, as BuildKit's dispatcher decides.

* Global scope (before the first FROM): the automatic platform ARGs (TARGETPLATFORM, TARGETOS,
  TARGETARCH, TARGETVARIANT, BUILDPLATFORM, BUILDOS, BUILDARCH, BUILDVARIANT), then the meta
  ARGs in order: a meta ARG takes its ``--build-arg`` value verbatim if given, else its default
  expanded with the globals so far; without either it stays unset. Globals are usable only in
  FROM lines (image, ``--platform``) and as the value of a bare ``ARG name`` in a stage.
* Stage scope: the base image's ENV (PATH added if missing) or, for ``FROM <stage>``, everything
  that stage had. Each ``ARG name[=default]`` takes, in order of preference, the build arg,
  the default expanded with the stage's variables so far, or (no default) the global value;
  a value is written into the stage's variables from that line on; without one the name is
  declared but unset. ``ENV`` writes the variables and the image config. Both write the same
  table, so the later of ``ENV X`` and ``ARG X`` wins for the instructions after them (the
  reference's "ENV overrides ARG" is the usual order: ARG first, ENV after); only ENV reaches
  the image config.
* Predefined proxy ARGs (HTTP_PROXY, https_proxy, NO_PROXY, ...) reach RUN as proxy settings
  when given as build args, without an ARG line; they are not expanded in instructions unless
  declared.

Lifecycle: ``global_args(...)`` once per build; one :class:`StageScope` per stage
(``StageScope.from_image`` or ``parent.child()``). For each instruction in order: ARG goes
to ``declare`` as parsed; everything else is expanded first with
``expand.expand_instruction(instr, scope.lookup())`` and an expanded ENV then goes to
``set_env``. ``image_env()`` is the config's Env list; ``run_env()`` the environment of a RUN.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from dockyard.builder.expand import Lexer
from dockyard.builder.instructions import Arg, Env
from dockyard.errors import InvalidArgument

PROXY_ARGS = (
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
    "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
)  # fmt: skip

_PROXY_KINDS = ("http_proxy", "https_proxy", "ftp_proxy", "no_proxy", "all_proxy")

PLATFORM_ARGS = (
    "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT",
    "BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT",
)  # fmt: skip

# BuildKit sets PATH when the base image has none (system.DefaultPathEnv for Linux).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def platform_args(target: str, build: str | None = None) -> dict[str, str]:
    """The automatic platform ARGs for ``os/arch[/variant]`` target and build platforms."""
    out: dict[str, str] = {}
    for prefix, plat in (("TARGET", target), ("BUILD", build or target)):
        parts = plat.split("/")
        if len(parts) < 2 or len(parts) > 3 or not all(parts):
            raise InvalidArgument(f'invalid platform "{plat}": want os/arch[/variant]')
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
            if spec.name in build_args:
                values[spec.name] = build_args[spec.name]
            elif spec.default is not None:
                try:
                    values[spec.name] = lex.process_word(spec.default, values)
                except InvalidArgument as err:
                    raise InvalidArgument(
                        f"dockerfile parse error on line {instr.line}: {err}"
                    ) from None
    return values


def _parse_env_list(env: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in env:
        k, _, v = item.partition("=")
        out[k] = v
    return out


class StageScope:
    """The variables of one stage while its instructions are dispatched in order."""

    def __init__(
        self,
        build_args: Mapping[str, str],
        globals_: Mapping[str, str],
        variables: Mapping[str, str] | None = None,
        image_env: Mapping[str, str] | None = None,
        escape: str = "\\",
    ) -> None:
        self.build_args = dict(build_args)
        self.globals = dict(globals_)
        self.variables: dict[str, str] = dict(variables or {})
        self.env: dict[str, str] = dict(image_env if image_env is not None else self.variables)
        self.declared: list[str] = []
        self.escape = escape

    @classmethod
    def from_image(
        cls,
        build_args: Mapping[str, str],
        globals_: Mapping[str, str],
        image_env: Iterable[str] = (),
        escape: str = "\\",
    ) -> StageScope:
        """Scope of a stage whose base is an image with config Env ``["K=V", ...]``."""
        env = _parse_env_list(image_env)
        env.setdefault("PATH", DEFAULT_PATH)
        return cls(build_args, globals_, env, env, escape)

    def lookup(self) -> dict[str, str]:
        """What ``$name`` means at this point of the stage."""
        return dict(self.variables)

    def declare(self, instr: Arg) -> None:
        """Apply an in-stage ARG instruction (as parsed: names are never expanded)."""
        lex = Lexer(self.escape)
        for spec in instr.args:
            name = spec.name
            self.declared.append(name)
            value: str | None
            if name in self.build_args:
                value = self.build_args[name]
            elif spec.default is not None:
                try:
                    value = lex.process_word(spec.default, self.variables)
                except InvalidArgument as err:
                    raise InvalidArgument(
                        f"dockerfile parse error on line {instr.line}: {err}"
                    ) from None
            else:
                value = self.globals.get(name)
            if value is not None:
                self.variables[name] = value

    def set_env(self, instr: Env) -> None:
        """Apply an ENV instruction already expanded with ``lookup()`` (every pair of one
        instruction sees the values from before it, which that expansion guarantees)."""
        for k, v in instr.pairs:
            self.variables[k] = v
            self.env[k] = v

    def image_env(self) -> list[str]:
        """The image config's Env: base image ENV and this build's ENV, never ARG values."""
        return [f"{k}={v}" for k, v in self.env.items()]

    def run_env(self) -> dict[str, str]:
        """Environment of a RUN step: the stage's variables plus the proxy settings.

        A proxy build arg is matched case-insensitively (``Http_Proxy`` counts) and, as
        BuildKit's ProxyEnv does, reaches the step under both spellings (``HTTP_PROXY`` and
        ``http_proxy``), unless the stage itself set that variable."""
        out = self.lookup()
        proxies: dict[str, str] = {}
        for key in sorted(self.build_args):  # BuildKit walks sorted keys; the last one wins
            low = key.lower()
            if low in _PROXY_KINDS:
                proxies[low] = self.build_args[key]
        for low, value in proxies.items():
            for name in (low.upper(), low):
                out.setdefault(name, value)
        return out

    def child(self) -> StageScope:
        """Scope for a stage built ``FROM`` this one: it inherits variables and ENV."""
        new = StageScope(self.build_args, self.globals, self.variables, self.env, self.escape)
        new.declared = list(self.declared)
        return new

    def unused_build_args(self, all_declared: Iterable[str]) -> list[str]:
        """Build args no ARG consumed (Docker warns about them); proxies and platform excluded."""
        used = set(all_declared)
        return sorted(
            k
            for k in self.build_args
            if k not in used and k.lower() not in _PROXY_KINDS and k not in PLATFORM_ARGS
        )
