"""Typed Dockerfile instructions: one frozen dataclass per instruction, built from parser nodes.

Contract: ``from_node(node)`` validates the node's flags and arguments the way BuildKit's
``instructions`` package does and returns the dataclass, or raises InvalidArgument with
BuildKit's message prefixed by ``dockerfile parse error on line N:`` (``unknown flag: --foo``,
``unknown instruction: FOO (did you mean FROM?)``, ``COPY requires at least two arguments...``).
``parse_dockerfile(text)`` = ``parser.parse`` + ``from_node`` for every node.

Values are *not* expanded here (``expand.expand_instruction`` does that, when the build knows
the variables); quotes in ENV/LABEL/ARG values are still in place for the same reason.
Every instruction carries ``line`` (first line), ``end_line`` and ``original`` (its text with
continuations joined).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dockyard.builder.duration import parse_duration
from dockyard.builder.flags import BuilderFlags
from dockyard.builder.mounts import Mount, parse_mount
from dockyard.builder.parser import Heredoc, Node, ParseResult, parse, parse_heredoc_word
from dockyard.builder.suggest import suggest as _suggest
from dockyard.builder.values import parse_chmod, source_kind
from dockyard.errors import InvalidArgument

INSTRUCTION_NAMES = (
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
    "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
)  # fmt: skip

# Docker's container.MinimumDuration for healthcheck intervals.
MIN_HEALTH_DURATION_NS = 1_000_000


@dataclass(frozen=True, kw_only=True)
class Instruction:
    line: int
    end_line: int
    original: str = ""


@dataclass(frozen=True)
class From(Instruction):
    image: str
    name: str | None = None  # stage name, lower case
    platform: str | None = None


@dataclass(frozen=True)
class Run(Instruction):
    cmd: tuple[str, ...]
    shell_form: bool = True
    mounts: tuple[Mount, ...] = ()
    network: str | None = None  # default | none | host
    security: str | None = None  # sandbox | insecure
    devices: tuple[str, ...] = ()
    heredocs: tuple[Heredoc, ...] = ()

    def script(self) -> tuple[str, ...]:
        """The command to execute, with heredocs folded in as BuildKit does.

        ``RUN <<EOF`` alone runs the body (tabs stripped for ``<<-``) with the shell, unless
        the body starts with ``#!``: then it is meant to be written to a file and executed
        (see :meth:`shebang_file`). Any other use of heredocs hands the shell the command line
        followed by the bodies and their delimiters, so the shell reads the heredocs itself.
        """
        if not self.heredocs or not self.shell_form:
            return self.cmd
        line = self.cmd[0] if self.cmd else ""
        if parse_heredoc_word(line) is not None:
            return (self.heredocs[0].chomped,)
        full = line
        for h in self.heredocs:
            full += "\n" + h.content + h.name
        return (full,)

    def shebang_file(self) -> tuple[str, str] | None:
        """``(name, content)`` when the whole command is one heredoc starting with ``#!``.

        BuildKit writes such a body to ``/dev/pipes/<name>`` (mode 0755, read-only mount) and
        executes that path without a shell.
        """
        if not self.heredocs or not self.shell_form or len(self.cmd) != 1:
            return None
        if parse_heredoc_word(self.cmd[0]) is None:
            return None
        body = self.heredocs[0].chomped
        return (self.heredocs[0].name, body) if body.startswith("#!") else None


@dataclass(frozen=True)
class Cmd(Instruction):
    cmd: tuple[str, ...]
    shell_form: bool = True


@dataclass(frozen=True)
class Entrypoint(Instruction):
    cmd: tuple[str, ...] | None  # None: ENTRYPOINT [] / empty, which resets it
    shell_form: bool = True


@dataclass(frozen=True)
class Env(Instruction):
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ArgSpec:
    name: str
    default: str | None = None


@dataclass(frozen=True)
class Arg(Instruction):
    args: tuple[ArgSpec, ...]

    @property
    def name(self) -> str:
        return self.args[0].name

    @property
    def default(self) -> str | None:
        return self.args[0].default


@dataclass(frozen=True)
class Label(Instruction):
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Maintainer(Instruction):
    name: str


@dataclass(frozen=True)
class Expose(Instruction):
    ports: tuple[str, ...]


@dataclass(frozen=True)
class _CopyLike(Instruction):
    sources: tuple[str, ...]  # paths/URLs; heredoc sources are in ``heredocs``
    dest: str
    from_: str | None = None
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    keep_git_dir: bool = False
    checksum: str | None = None
    exclude: tuple[str, ...] = ()
    parents: bool = False
    unpack: bool | None = None  # None: default (local archives unpacked, URLs not)
    heredocs: tuple[Heredoc, ...] = ()  # inline files, named by their delimiter


@dataclass(frozen=True)
class Copy(_CopyLike):
    pass


@dataclass(frozen=True)
class Add(_CopyLike):
    pass


@dataclass(frozen=True)
class Workdir(Instruction):
    path: str


@dataclass(frozen=True)
class User(Instruction):
    user: str


@dataclass(frozen=True)
class Volume(Instruction):
    paths: tuple[str, ...]


@dataclass(frozen=True)
class Stopsignal(Instruction):
    signal: str


@dataclass(frozen=True)
class Healthcheck(Instruction):
    """``test`` is Docker's HealthConfig.Test: ``("NONE",)``, ``("CMD", ...)``, ``("CMD-SHELL", s)``.

    Durations are nanoseconds (as in the image config); None means "not set" (inherit/default).
    """

    test: tuple[str, ...]
    interval: int | None = None
    timeout: int | None = None
    start_period: int | None = None
    start_interval: int | None = None
    retries: int | None = None

    @property
    def none(self) -> bool:
        return self.test == ("NONE",)


@dataclass(frozen=True)
class Shell(Instruction):
    shell: tuple[str, ...]


@dataclass(frozen=True)
class Onbuild(Instruction):
    expression: str  # the trigger as stored in the image config (ContainerConfig.OnBuild)
    inner: Instruction  # the trigger, typed (validated when the ONBUILD line is parsed)


# --------------------------------------------------------------------------------------------
# node -> instruction


def _err_at_least_one(cmd: str) -> InvalidArgument:
    return InvalidArgument(f"{cmd} requires at least one argument")


def _err_exactly_one(cmd: str) -> InvalidArgument:
    return InvalidArgument(f"{cmd} requires exactly one argument")


def _err_no_dest(cmd: str) -> InvalidArgument:
    return InvalidArgument(
        f"{cmd} requires at least two arguments, but only one was provided. Destination could not be determined"
    )


def _cmdline(node: Node) -> tuple[str, ...]:
    """BuildKit's handleJSONArgs: exec form as is, shell form joined into one string."""
    if node.json:
        return node.args
    return (" ".join(node.args),)


def _base(node: Node) -> dict[str, object]:
    return {"line": node.start_line, "end_line": node.end_line, "original": node.original}


def from_node(node: Node) -> Instruction:
    """Type and validate one parsed node. Raises InvalidArgument naming the line."""
    try:
        return _from_node(node)
    except InvalidArgument as err:
        msg = str(err)
        if msg.startswith("dockerfile parse error"):
            raise
        raise InvalidArgument(f"dockerfile parse error on line {node.start_line}: {msg}") from None


def _from_node(node: Node) -> Instruction:
    kw = node.keyword
    handler = _HANDLERS.get(kw)
    if handler is None:
        raise InvalidArgument(
            _suggest(
                f"unknown instruction: {node.original_keyword.upper()}",
                node.original_keyword.upper(),
                list(INSTRUCTION_NAMES),
                False,
            )
        )
    return handler(node, BuilderFlags(node.flags))


def _env(node: Node, flags: BuilderFlags) -> Instruction:
    flags.parse()
    return Env(pairs=_kvps(node.args, "ENV"), **_base(node))  # type: ignore[arg-type]


def _label(node: Node, flags: BuilderFlags) -> Instruction:
    flags.parse()
    return Label(pairs=_kvps(node.args, "LABEL"), **_base(node))  # type: ignore[arg-type]


def _kvps(args: tuple[str, ...], cmd: str) -> tuple[tuple[str, str], ...]:
    if not args:
        raise _err_at_least_one(cmd)
    if len(args) % 2:
        raise InvalidArgument(f"Bad input to {cmd}, too many arguments")
    out = []
    for k, v in zip(args[::2], args[1::2], strict=True):
        if k == "":
            raise InvalidArgument(f"{cmd} names can not be blank")
        out.append((k, v))
    return tuple(out)


def _maintainer(node: Node, flags: BuilderFlags) -> Instruction:
    if len(node.args) != 1:
        raise _err_exactly_one("MAINTAINER")
    flags.parse()
    return Maintainer(name=node.args[0], **_base(node))  # type: ignore[arg-type]


def _copy_like(node: Node, flags: BuilderFlags, cmd: str) -> Instruction:
    if len(node.args) < 2:
        raise _err_no_dest(cmd)
    flags.add_string("chown")
    flags.add_string("chmod")
    flags.add_bool("link")
    flags.add_strings("exclude")
    if cmd == "COPY":
        flags.add_string("from")
        flags.add_bool("parents")
    else:
        flags.add_bool("keep-git-dir")
        flags.add_string("checksum")
        flags.add_bool("unpack")
    flags.parse()
    dest = node.args[-1]
    if parse_heredoc_word(dest) is not None:
        raise InvalidArgument(f"{cmd} cannot accept a heredoc as a destination")
    by_name = {h.name: h for h in node.heredocs}
    sources: list[str] = []
    docs: list[Heredoc] = []
    for src in node.args[:-1]:
        doc = parse_heredoc_word(src) if not node.json else None
        if doc is not None:
            h = by_name.get(doc[0])
            if h is None:  # cannot happen: the parser read a body for every marker
                raise InvalidArgument(f"{cmd}: no content for heredoc {doc[0]}")
            docs.append(h)
        else:
            sources.append(src)
    checksum = flags.string("checksum")
    if checksum is not None:
        if len(sources) != 1:
            raise InvalidArgument("checksum can't be specified for multiple sources")
        if source_kind(sources[0]) == "local":
            raise InvalidArgument("checksum requires HTTP(S) or Git sources")
    chmod = flags.string("chmod")
    if chmod is not None:
        _validate_chmod(chmod)
    cls = Copy if cmd == "COPY" else Add
    return cls(
        sources=tuple(sources),
        dest=dest,
        from_=flags.string("from"),
        chown=flags.string("chown"),
        chmod=chmod,
        link=flags.bool("link"),
        keep_git_dir=flags.bool("keep-git-dir"),
        checksum=checksum,
        exclude=flags.strings("exclude"),
        parents=flags.bool("parents"),
        unpack=flags.opt_bool("unpack"),
        heredocs=tuple(docs),
        **_base(node),  # type: ignore[arg-type]
    )


def _validate_chmod(chmod: str) -> None:
    """Octal (``755``) or symbolic (``u=rwX,go=rX``, ``+x``); ``$VAR`` is checked after expansion."""
    if "$" not in chmod:
        parse_chmod(chmod)


def _copy(node: Node, flags: BuilderFlags) -> Instruction:
    return _copy_like(node, flags, "COPY")


def _add(node: Node, flags: BuilderFlags) -> Instruction:
    return _copy_like(node, flags, "ADD")


_STAGE_NAME = re.compile(r"^[a-z][a-z0-9\-_.]*$")


def _from(node: Node, flags: BuilderFlags) -> Instruction:
    args = node.args
    name = None
    if len(args) == 3 and args[1].lower() == "as":
        name = args[2].lower()
        if not _STAGE_NAME.match(name):
            raise InvalidArgument(
                f'invalid name for build stage: "{args[2]}", name can\'t start with a number or contain symbols'
            )
    elif len(args) != 1:
        raise InvalidArgument("FROM requires either one or three arguments")
    flags.add_string("platform")
    flags.parse()
    return From(image=args[0], name=name, platform=flags.string("platform"), **_base(node))  # type: ignore[arg-type]


def _onbuild(node: Node, flags: BuilderFlags) -> Instruction:
    if node.sub is None:
        raise _err_at_least_one("ONBUILD")
    flags.parse()
    trigger = node.sub.original_keyword.upper()
    if trigger == "ONBUILD":
        raise InvalidArgument("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("MAINTAINER", "FROM"):
        raise InvalidArgument(f"{trigger} isn't allowed as an ONBUILD trigger")
    expression = re.sub(r"(?i)^\s*ONBUILD\s*", "", node.original)
    for h in node.heredocs:
        expression += "\n" + h.content + h.name
    inner = _from_node(node.sub)
    return Onbuild(expression=expression, inner=inner, **_base(node))  # type: ignore[arg-type]


def _workdir(node: Node, flags: BuilderFlags) -> Instruction:
    if len(node.args) != 1:
        raise _err_exactly_one("WORKDIR")
    flags.parse()
    return Workdir(path=node.args[0], **_base(node))  # type: ignore[arg-type]


def _run(node: Node, flags: BuilderFlags) -> Instruction:
    flags.add_strings("mount")
    flags.add_string("network")
    flags.add_string("security")
    flags.add_strings("device")
    flags.parse()
    network = flags.string("network")
    if network is not None and network not in ("default", "none", "host"):
        raise InvalidArgument(f'unsupported network mode "{network}"')
    security = flags.string("security")
    if security is not None and security not in ("sandbox", "insecure"):
        raise InvalidArgument(f'unsupported security mode "{security}"')
    mounts = tuple(parse_mount(m) for m in flags.strings("mount"))
    return Run(
        cmd=_cmdline(node),
        shell_form=not node.json,
        mounts=mounts,
        network=network,
        security=security,
        devices=flags.strings("device"),
        heredocs=node.heredocs,
        **_base(node),  # type: ignore[arg-type]
    )


def _cmd(node: Node, flags: BuilderFlags) -> Instruction:
    flags.parse()
    return Cmd(cmd=_cmdline(node), shell_form=not node.json, **_base(node))  # type: ignore[arg-type]


def _entrypoint(node: Node, flags: BuilderFlags) -> Instruction:
    flags.parse()
    cmd: tuple[str, ...] | None = _cmdline(node)
    if node.json and not node.args:
        cmd = None
    return Entrypoint(cmd=cmd, shell_form=not node.json, **_base(node))  # type: ignore[arg-type]


def _duration(flags: BuilderFlags, name: str) -> int | None:
    value = flags.string(name)
    if value is None:
        return None
    try:
        ns = parse_duration(value)
    except ValueError as err:
        raise InvalidArgument(str(err)) from None
    if ns == 0:
        return 0  # "0s" means "use the default" and is allowed
    if ns < MIN_HEALTH_DURATION_NS:
        raise InvalidArgument(f'Interval "{name}" cannot be less than 1ms')
    return ns


def _healthcheck(node: Node, flags: BuilderFlags) -> Instruction:
    if not node.args:
        raise _err_at_least_one("HEALTHCHECK")
    typ = node.args[0].upper()
    rest = node.args[1:]
    if typ == "NONE":
        if rest:
            raise InvalidArgument("HEALTHCHECK NONE takes no arguments")
        return Healthcheck(test=("NONE",), **_base(node))  # type: ignore[arg-type]
    for name in ("interval", "timeout", "start-period", "start-interval", "retries"):
        flags.add_string(name)
    flags.parse()
    if typ != "CMD":
        raise InvalidArgument(f'Unknown type "{typ}" in HEALTHCHECK (try CMD)')
    cmd = rest if node.json else ((" ".join(rest),) if rest else ())
    if not cmd or cmd == ("",):
        raise InvalidArgument("Missing command after HEALTHCHECK CMD")
    test = ("CMD", *cmd) if node.json else ("CMD-SHELL", *cmd)
    retries = None
    raw = flags.string("retries")
    if raw is not None:
        if re.fullmatch(r"[+-]?[0-9]+", raw) is None:  # Go's strconv.ParseInt
            raise InvalidArgument(f'strconv.ParseInt: parsing "{raw}": invalid syntax')
        retries = int(raw, 10)
        if retries < 0:
            raise InvalidArgument(f"--retries cannot be negative ({retries})")
    return Healthcheck(
        test=test,
        interval=_duration(flags, "interval"),
        timeout=_duration(flags, "timeout"),
        start_period=_duration(flags, "start-period"),
        start_interval=_duration(flags, "start-interval"),
        retries=retries,
        **_base(node),  # type: ignore[arg-type]
    )


def _expose(node: Node, flags: BuilderFlags) -> Instruction:
    if not node.args:
        raise _err_at_least_one("EXPOSE")
    flags.parse()
    return Expose(ports=tuple(sorted(node.args)), **_base(node))  # type: ignore[arg-type]


def _user(node: Node, flags: BuilderFlags) -> Instruction:
    if len(node.args) != 1:
        raise _err_exactly_one("USER")
    flags.parse()
    return User(user=node.args[0], **_base(node))  # type: ignore[arg-type]


def _volume(node: Node, flags: BuilderFlags) -> Instruction:
    if not node.args:
        raise _err_at_least_one("VOLUME")
    flags.parse()
    paths = []
    for v in node.args:
        v = v.strip()
        if v == "":
            raise InvalidArgument("VOLUME specified can not be an empty string")
        paths.append(v)
    return Volume(paths=tuple(paths), **_base(node))  # type: ignore[arg-type]


def _stopsignal(node: Node, flags: BuilderFlags) -> Instruction:
    if len(node.args) != 1:
        raise _err_exactly_one("STOPSIGNAL")
    flags.parse()
    return Stopsignal(signal=node.args[0], **_base(node))  # type: ignore[arg-type]


def _arg(node: Node, flags: BuilderFlags) -> Instruction:
    if not node.args:
        raise _err_at_least_one("ARG")
    flags.parse()
    specs = []
    for word in node.args:
        if "=" in word:
            k, v = word.split("=", 1)
            if k == "":
                raise InvalidArgument("ARG names can not be blank")
            specs.append(ArgSpec(k, v))
        else:
            specs.append(ArgSpec(word))
    return Arg(args=tuple(specs), **_base(node))  # type: ignore[arg-type]


def _shell(node: Node, flags: BuilderFlags) -> Instruction:
    flags.parse()
    if node.json and node.args:
        return Shell(shell=node.args, **_base(node))  # type: ignore[arg-type]
    if not node.args or (not node.json and node.args == ("",)):
        raise _err_at_least_one("SHELL")
    raise InvalidArgument("SHELL requires the arguments to be in JSON form")


_HANDLERS = {
    "add": _add,
    "arg": _arg,
    "cmd": _cmd,
    "copy": _copy,
    "entrypoint": _entrypoint,
    "env": _env,
    "expose": _expose,
    "from": _from,
    "healthcheck": _healthcheck,
    "label": _label,
    "maintainer": _maintainer,
    "onbuild": _onbuild,
    "run": _run,
    "shell": _shell,
    "stopsignal": _stopsignal,
    "user": _user,
    "volume": _volume,
    "workdir": _workdir,
}


def parse_trigger(expression: str, escape: str = "\\") -> Instruction:
    """Parse one ONBUILD trigger taken from a base image's config (``OnBuild`` entries).

    Raises InvalidArgument when the trigger is not exactly one instruction or is one that may
    not be a trigger (BuildKit: ``onbuild trigger should be a single expression``).
    """
    text = expression if escape == "\\" else f"# escape={escape}\n{expression}"
    result = parse(text)
    if len(result.nodes) != 1:
        raise InvalidArgument("onbuild trigger should be a single expression")
    node = result.nodes[0]
    trigger = node.original_keyword.upper()
    if trigger == "ONBUILD":
        raise InvalidArgument("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("MAINTAINER", "FROM"):
        raise InvalidArgument(f"{trigger} isn't allowed as an ONBUILD trigger")
    return from_node(node)


@dataclass(frozen=True)
class Dockerfile:
    """A parsed and typed Dockerfile: the instructions plus what the parser learned."""

    instructions: tuple[Instruction, ...]
    escape: str
    syntax: str | None
    check: str | None
    warnings: tuple[str, ...]


def parse_dockerfile(source: str | bytes) -> Dockerfile:
    result: ParseResult = parse(source)
    instructions = tuple(from_node(n) for n in result.nodes)
    return Dockerfile(
        instructions=instructions,
        escape=result.escape,
        syntax=result.directive("syntax"),
        check=result.directive("check"),
        warnings=result.warnings,
    )
