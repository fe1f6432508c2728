"""Builder flags of an instruction (``--from=x``, ``--link``, ``--mount=...``), BuildKit's BFlags.

Lifecycle: create with the node's raw flags, declare the flags the instruction accepts
(``add_bool``/``add_string``/``add_strings``), then ``parse()``; read values back with
``bool``/``opt_bool``/``string``/``strings``. ``parse`` raises InvalidArgument with BuildKit's
wording: ``unknown flag: --foo (did you mean --from?)``, ``duplicate flag specified: --x``,
``missing a value on flag: --x``, ``expecting boolean value for flag --x, not: y``. A bare
boolean flag is true; ``--`` ends the flags; only ``strings`` flags may repeat.
"""

from __future__ import annotations

from dockyard.builder.suggest import suggest as _suggest
from dockyard.errors import InvalidArgument


class BuilderFlags:
    """BuildKit's BFlags: declare the flags an instruction takes, then parse node.flags."""

    def __init__(self, args: tuple[str, ...]) -> None:
        self.args = args
        self.kinds: dict[str, str] = {}
        self.values: dict[str, object] = {}
        self.used: set[str] = set()

    def add_bool(self, name: str) -> None:
        self.kinds[name] = "bool"

    def add_string(self, name: str) -> None:
        self.kinds[name] = "string"

    def add_strings(self, name: str) -> None:
        self.kinds[name] = "strings"
        self.values[name] = []

    def parse(self) -> None:
        for arg in self.args:
            if not arg.startswith("--"):
                raise InvalidArgument(f"arg should start with -- : {arg}")
            if arg == "--":
                return
            name, eq, value = arg[2:].partition("=")
            kind = self.kinds.get(name)
            if kind is None:
                raise InvalidArgument(
                    _suggest(f"unknown flag: --{name}", name, list(self.kinds), True, "--")
                )
            if name in self.used and kind != "strings":
                raise InvalidArgument(f"duplicate flag specified: --{name}")
            self.used.add(name)
            if kind == "bool":
                if eq and value == "":
                    raise InvalidArgument(f"missing a value on flag: --{name}")
                v = value.lower()
                if v not in ("", "true", "false"):
                    raise InvalidArgument(
                        f"expecting boolean value for flag --{name}, not: {value}"
                    )
                self.values[name] = v != "false"
            elif not eq:
                raise InvalidArgument(f"missing a value on flag: --{name}")
            elif kind == "string":
                self.values[name] = value
            else:
                self.values[name].append(value)  # type: ignore[attr-defined]

    def bool(self, name: str) -> bool:
        return bool(self.values.get(name, False))

    def opt_bool(self, name: str) -> bool | None:
        return self.values.get(name)  # type: ignore[return-value]

    def string(self, name: str) -> str | None:
        v = self.values.get(name)
        return None if v in (None, "") else str(v)

    def strings(self, name: str) -> tuple[str, ...]:
        return tuple(self.values.get(name, ()))  # type: ignore[arg-type]
