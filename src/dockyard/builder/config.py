"""Metadata dispatchers: what each expanded instruction does to the image config (BuildKit's).

Lifecycle: one :class:`ConfigBuilder` per stage, created from the base image's container
config (the ``config`` member of the image JSON, Docker's PascalCase: Env, Cmd, Entrypoint,
WorkingDir, User, Labels, ExposedPorts, Volumes, StopSignal, Shell, Healthcheck, OnBuild) or
from the parent stage's builder (``child()``). Feed it every instruction of the stage in order,
already expanded (``expand.expand_instruction``); ``apply`` returns the history line BuildKit
records (``created_by``) for metadata instructions and None for the ones that change the
filesystem (RUN, COPY, ADD), which the executor handles (``run_created_by`` gives RUN's line). ``config`` is a fresh copy each
time it is read; the input dicts are never modified.

Rules, from BuildKit's dockerfile2llb dispatchers:

* shell form CMD/ENTRYPOINT run through SHELL (default ``/bin/sh -c``) with the words joined
  by blanks; CMD sets ``ArgsEscaped``; ENTRYPOINT clears Cmd unless a CMD came earlier in
  the build of this stage (inherited through ``FROM <stage>``);
* ENV replaces a variable in place or appends it; LABEL overwrites; EXPOSE adds
  ``"<port>/<proto>": {}``; VOLUME adds paths; WORKDIR is relative to the previous one;
  STOPSIGNAL must be a signal; ONBUILD appends the trigger text; MAINTAINER sets the image
  author; HEALTHCHECK NONE disables an inherited check; ARG changes nothing in the config.
* ONBUILD triggers of the base image are not inherited (they ran in this build); PATH is
  added to Env when the base has none.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from dockyard.builder import instructions as ins
from dockyard.builder.scope import DEFAULT_PATH
from dockyard.builder.values import exposed_ports, normalize_workdir, parse_signal
from dockyard.errors import InvalidArgument

DEFAULT_SHELL = ("/bin/sh", "-c")


def _go_quote(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def go_quote_list(items: list[str] | tuple[str, ...] | None) -> str:
    """Go's ``%q`` of a []string: ``["a" "b c"]``."""
    return "[" + " ".join(_go_quote(i) for i in (items or ())) + "]"


def _duration_text(ns: int) -> str:
    """Go's time.Duration String() for the values a healthcheck can hold."""
    if ns == 0:
        return "0s"
    out = ""
    neg = ns < 0
    ns = abs(ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                whole, frac = divmod(ns, size)
                text = str(whole)
                if frac:
                    text += "." + str(frac).rjust(len(str(size)) - 1, "0").rstrip("0")
                return ("-" if neg else "") + text + unit
    h, rem = divmod(ns, 3600 * 10**9)
    m, rem = divmod(rem, 60 * 10**9)
    s, frac = divmod(rem, 10**9)
    if h:
        out += f"{h}h"
    if h or m:
        out += f"{m}m"
    secs = str(s)
    if frac:
        secs += "." + str(frac).rjust(9, "0").rstrip("0")
    out += secs + "s"
    return ("-" if neg else "") + out


class ConfigBuilder:
    """The container config of one stage while its instructions are dispatched."""

    def __init__(
        self,
        config: dict[str, Any] | None = None,
        *,
        author: str = "",
        cmd_set: bool = False,
    ) -> None:
        self._config: dict[str, Any] = copy.deepcopy(config or {})
        # triggers ran in this build; they are not passed on (BuildKit clears them)
        self._config.pop("OnBuild", None)
        env = list(self._config.get("Env") or [])
        if not any(e.partition("=")[0] == "PATH" for e in env):
            # BuildKit makes sure PATH is always set (scratch images included)
            self._config["Env"] = env + [f"PATH={DEFAULT_PATH}"]
        self.author = author
        self.cmd_set = cmd_set

    @property
    def config(self) -> dict[str, Any]:
        return copy.deepcopy(self._config)

    def child(self) -> ConfigBuilder:
        """Builder for a stage ``FROM`` this one: same config and CMD state."""
        return ConfigBuilder(self._config, author=self.author, cmd_set=self.cmd_set)

    def with_shell(self, words: tuple[str, ...] | list[str]) -> list[str]:
        shell = list(self._config.get("Shell") or DEFAULT_SHELL)
        return shell + [" ".join(words)]

    def apply(
        self, instr: ins.Instruction, variables: Mapping[str, str] | None = None
    ) -> str | None:
        """Apply one expanded instruction; returns the history ``created_by`` text ("" when
        BuildKit records none, as for ONBUILD), or None for instructions this does not handle
        (RUN, COPY, ADD, FROM). ``variables`` (the scope after ``StageScope.declare``) gives
        the values shown in an ARG's history line. Errors name the instruction's line."""
        try:
            return self._apply(instr, variables)
        except InvalidArgument as err:
            if str(err).startswith("dockerfile parse error"):
                raise
            raise InvalidArgument(f"dockerfile parse error on line {instr.line}: {err}") from None

    def _apply(self, instr: ins.Instruction, variables: Mapping[str, str] | None) -> str | None:
        c = self._config
        if isinstance(instr, ins.Env):
            env = list(c.get("Env") or [])
            for k, v in instr.pairs:
                for i, item in enumerate(env):
                    if item.partition("=")[0] == k:
                        env[i] = f"{k}={v}"
                        break
                else:
                    env.append(f"{k}={v}")
            c["Env"] = env
            return "ENV " + " ".join(f"{k}={v}" for k, v in instr.pairs)
        if isinstance(instr, ins.Label):
            labels = dict(c.get("Labels") or {})
            for k, v in instr.pairs:
                labels[k] = v
            c["Labels"] = labels
            return "LABEL " + " ".join(f"{k}={v}" for k, v in instr.pairs)
        if isinstance(instr, ins.Cmd):
            args = self.with_shell(instr.cmd) if instr.shell_form else list(instr.cmd)
            c["Cmd"] = args
            c["ArgsEscaped"] = True
            self.cmd_set = True
            return "CMD " + go_quote_list(args)
        if isinstance(instr, ins.Entrypoint):
            if instr.cmd is None:
                args: list[str] | None = None
            elif instr.shell_form:
                args = self.with_shell(instr.cmd)
            else:
                args = list(instr.cmd)
            c["Entrypoint"] = args
            if not self.cmd_set:
                c["Cmd"] = None
            return "ENTRYPOINT " + go_quote_list(args)
        if isinstance(instr, ins.Healthcheck):
            hc: dict[str, Any] = {"Test": list(instr.test)}
            for key, value in (
                ("Interval", instr.interval),
                ("Timeout", instr.timeout),
                ("StartPeriod", instr.start_period),
                ("StartInterval", instr.start_interval),
                ("Retries", instr.retries),
            ):
                if value:
                    hc[key] = value
            c["Healthcheck"] = hc
            return (
                "HEALTHCHECK {Test:[" + " ".join(instr.test) + "]"
                + f" Interval:{_duration_text(instr.interval or 0)}"
                + f" Timeout:{_duration_text(instr.timeout or 0)}"
                + f" StartPeriod:{_duration_text(instr.start_period or 0)}"
                + f" StartInterval:{_duration_text(instr.start_interval or 0)}"
                + f" Retries:{instr.retries or 0}}}"
            )  # fmt: skip
        if isinstance(instr, ins.Expose):
            ports = exposed_ports(instr.ports)
            exposed = dict(c.get("ExposedPorts") or {})
            for p in ports:
                exposed[p] = {}
            c["ExposedPorts"] = exposed
            return "EXPOSE map[" + " ".join(f"{p}:{{}}" for p in sorted(ports)) + "]"
        if isinstance(instr, ins.User):
            c["User"] = instr.user
            return f"USER {instr.user}"
        if isinstance(instr, ins.Volume):
            vols = dict(c.get("Volumes") or {})
            for v in instr.paths:
                if v == "":
                    raise InvalidArgument("VOLUME specified can not be an empty string")
                vols[v] = {}
            c["Volumes"] = vols
            return "VOLUME [" + " ".join(instr.paths) + "]"
        if isinstance(instr, ins.Stopsignal):
            parse_signal(instr.signal)
            c["StopSignal"] = instr.signal
            return f"STOPSIGNAL {instr.signal}"
        if isinstance(instr, ins.Shell):
            c["Shell"] = list(instr.shell)
            return "SHELL [" + " ".join(instr.shell) + "]"
        if isinstance(instr, ins.Onbuild):
            c["OnBuild"] = list(c.get("OnBuild") or []) + [instr.expression]
            return ""  # BuildKit records no history entry for ONBUILD
        if isinstance(instr, ins.Workdir):
            wd = normalize_workdir(c.get("WorkingDir") or "/", instr.path)
            c["WorkingDir"] = wd
            return f"WORKDIR {wd}"
        if isinstance(instr, ins.Maintainer):
            self.author = instr.name
            return f"MAINTAINER {instr.name}"
        if isinstance(instr, ins.Arg):
            values = variables or {}
            return "ARG " + " ".join(
                f"{a.name}={values[a.name]}" if a.name in values else a.name for a in instr.args
            )
        return None


def run_created_by(args: list[str], build_args: Mapping[str, str] | None = None) -> str:
    """BuildKit's history line for RUN: ``RUN |2 A=1 B=2 /bin/sh -c make # buildkit``.

    ``args`` is the final argv (shell included); ``build_args`` the stage's declared ARG values
    in declaration order (they are part of the cache identity, hence of the line)."""
    parts: list[str] = []
    if build_args:
        parts.append(f"|{len(build_args)}")
        parts += [f"{k}={v}" for k, v in build_args.items()]
    return "RUN " + " ".join(parts + list(args)) + " # buildkit"
