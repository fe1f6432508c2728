"""JSON load/dump through the C accelerator ``_json`` without importing ``json``.

Why: ``import json`` pulls in ``re``, ``enum`` and ``functools`` (about 9 ms), a third of the
runtime's start-up budget. ``_json``'s scanner and encoder are the same code ``json`` uses
when they are available, so results are identical to ``json.loads``/``json.dumps`` for the
documents the runtime reads and writes (objects, arrays, strings, numbers, bools, null).
Errors are ``ValueError`` carrying the position, like ``json.JSONDecodeError``.
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class _Ctx:
    # The attribute set _json.make_scanner reads from its context (json.decoder.JSONDecoder).
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict[str, str] = {}

    @staticmethod
    def parse_constant(name: str) -> float:
        return {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}[name]


_scan = _json.make_scanner(_Ctx())
_WS = " \t\n\r"


def _skip(s: str, i: int) -> int:
    while i < len(s) and s[i] in _WS:
        i += 1
    return i


def loads(s: str | bytes) -> Any:
    """Parse a JSON document; raise ``ValueError`` naming the line and column on bad input."""
    if isinstance(s, bytes):
        s = s.decode("utf-8-sig")
    i = _skip(s, 0)
    try:
        obj, end = _scan(s, i)
        end = _skip(s, end)
        if end != len(s):
            raise ValueError
    except (StopIteration, ValueError, SystemError):
        # Error path only: _json builds its exception from json.decoder, which it expects to be
        # imported already; let the json module produce the exact same message.
        import json

        try:
            json.loads(s)
        except json.JSONDecodeError as e:
            raise ValueError(str(e)) from None
        raise ValueError("invalid JSON") from None
    finally:
        _Ctx.memo.clear()
    return obj


def _float(o: float) -> str:
    if o != o:
        return "NaN"
    if o == float("inf"):
        return "Infinity"
    if o == float("-inf"):
        return "-Infinity"
    return float.__repr__(o)


def _default(o: Any) -> Any:
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


_compact = _json.make_encoder(
    None, _default, _json.encode_basestring_ascii, None, ":", ",", False, False, True
)


def _pretty(obj: Any, pad: str, step: str, out: list[str]) -> None:
    inner = pad + step
    if isinstance(obj, dict) and obj:
        out.append("{\n")
        for n, (k, v) in enumerate(obj.items()):
            out.append(f"{',' if n else ''}{chr(10) if n else ''}{inner}{_compact(str(k), 0)[0]}: ")
            _pretty(v, inner, step, out)
        out.append(f"\n{pad}}}")
    elif isinstance(obj, (list, tuple)) and obj:
        out.append("[\n")
        for n, v in enumerate(obj):
            out.append(f"{',' + chr(10) if n else ''}{inner}")
            _pretty(v, inner, step, out)
        out.append(f"\n{pad}]")
    else:
        out.extend(_compact(obj, 0))


def dumps(obj: Any, indent: int | str | None = None) -> str:
    """Serialise ``obj``; compact unless ``indent`` (spaces or a string such as a tab) is
    given, then like ``json.dumps(indent=)``."""
    if indent is None:
        return "".join(_compact(obj, 0))
    out: list[str] = []
    _pretty(obj, "", indent if isinstance(indent, str) else " " * indent, out)
    return "".join(out)
