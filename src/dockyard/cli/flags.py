"""A tiny pflag-compatible flag parser: docker's command-line grammar without click/argparse.

Why not argparse: it imports ``re`` and ``gettext`` (~9 ms), click ~35 ms, on every command.

A command declares its flags as one spec string of space-separated tokens::

    "a|all q|quiet no-trunc f|filter* format= n|last#"

``x|name`` gives a short and a long name (a lone ``name`` is long-only); the suffix picks the
kind: none = bool, ``=`` = string, ``*`` = repeatable string (a list), ``#`` = int.
The destination is the long name with ``-`` turned into ``_``.

Grammar (as pflag): ``--name=v``, ``--name v``, ``-n v``, ``-nv``, ``-abc`` (bools combined, the
last may take a value: ``-it``, ``-p8080:80``), ``--rm=false``, ``--`` ends flags. With
``interspersed=False`` (run/exec/create) the first positional ends flag parsing, so the
container's own command keeps its flags. Errors raise ``FlagError`` (docker exits 125).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class FlagError(Exception):
    """Bad command line; ``str()`` is docker's message (``unknown flag: --foo``)."""


class Spec:
    __slots__ = ("by_name", "defaults")

    def __init__(self, text: str) -> None:
        self.by_name: dict[str, tuple[str, str]] = {}  # "-a" / "--all" -> (dest, kind)
        self.defaults: dict[str, Any] = {"help": False}
        for tok in text.split():
            kind = tok[-1] if tok[-1] in "=*#" else ""
            names = tok.rstrip("=*#").split("|")
            dest = names[-1].replace("-", "_")
            for n in names:
                self.by_name[("-" if len(n) == 1 else "--") + n] = (dest, kind)
            self.defaults[dest] = [] if kind == "*" else None if kind in "=#" else False
        self.by_name.setdefault("--help", ("help", ""))
        self.by_name.setdefault("-h", ("help", ""))


_SPECS: dict[str, Spec] = {}
LAST_SPEC = ""  # the spec of the latest parse: ``--help`` lists its flags


def describe(spec_text: str) -> list[str]:
    """Help lines for a spec, docker's layout: ``  -a, --all``, ``      --format string``."""
    lines = []
    for tok in spec_text.split():
        kind = tok[-1] if tok[-1] in "=*#" else ""
        names = tok.rstrip("=*#").split("|")
        short = f"-{names[0]}, " if len(names) == 2 else "    "
        typ = {"=": " string", "*": " list", "#": " int", "": ""}[kind]
        lines.append(f"  {short}--{names[-1]}{typ}")
    return lines


def _value(name: str, kind: str, raw: str) -> Any:
    if kind == "#":
        try:
            return int(raw)
        except ValueError:
            raise FlagError(f'invalid argument "{raw}" for "{name}" flag: strconv.ParseInt: '
                            f'parsing "{raw}": invalid syntax') from None
    return raw


def _bool(name: str, raw: str) -> bool:
    low = raw.lower()
    if low in ("1", "t", "true"):
        return True
    if low in ("0", "f", "false"):
        return False
    raise FlagError(f'invalid argument "{raw}" for "{name}" flag: strconv.ParseBool: parsing "{raw}": invalid syntax')


def parse(argv: list[str], spec_text: str, interspersed: bool = True) -> tuple[dict[str, Any], list[str]]:
    """(options by dest, positionals). Raises FlagError."""
    global LAST_SPEC
    LAST_SPEC = spec_text
    spec = _SPECS.get(spec_text)
    if spec is None:
        spec = _SPECS[spec_text] = Spec(spec_text)
    opts = {k: (list(v) if isinstance(v, list) else v) for k, v in spec.defaults.items()}
    args: list[str] = []

    def store(name: str, dest: str, kind: str, raw: str) -> None:
        if kind == "*":
            opts[dest].append(raw)
        else:
            opts[dest] = _value(name, kind, raw)

    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--":
            args += argv[i:]
            break
        if a.startswith("--"):
            name, eq, raw = a.partition("=")
            if name not in spec.by_name:
                raise FlagError(f"unknown flag: {name}")
            dest, kind = spec.by_name[name]
            if not kind:
                opts[dest] = _bool(name, raw) if eq else True
                continue
            if not eq:
                if i >= len(argv):
                    raise FlagError(f"flag needs an argument: {name}")
                raw = argv[i]
                i += 1
            store(name, dest, kind, raw)
        elif a.startswith("-") and len(a) > 1:
            j = 1
            while j < len(a):
                name = "-" + a[j]
                if name not in spec.by_name:
                    raise FlagError(f"unknown shorthand flag: '{a[j]}' in {a}")
                dest, kind = spec.by_name[name]
                j += 1
                if not kind:
                    if a[j:j + 1] == "=":
                        opts[dest] = _bool(name, a[j + 1:])
                        break
                    opts[dest] = True
                    continue
                raw = a[j:]
                if raw.startswith("="):
                    raw = raw[1:]
                elif not raw:
                    if i >= len(argv):
                        raise FlagError(f"flag needs an argument: '{a[j - 1]}' in {a}")
                    raw = argv[i]
                    i += 1
                store(name, dest, kind, raw)
                break
        else:
            args.append(a)
            if not interspersed:
                args += argv[i:]
                break
    return opts, args
