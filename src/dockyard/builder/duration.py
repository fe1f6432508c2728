"""Go's ``time.ParseDuration`` (HEALTHCHECK --interval=1m30s and friends), in nanoseconds.

``parse_duration("1h2m3.5s") == 3_723_500_000_000``. Units: ns, us (µs, μs), ms, s, m, h; a
sign is allowed; ``"0"`` alone needs no unit. Malformed input raises ValueError with Go's
message (``time: invalid duration "x"``, ``time: missing unit in duration "5"``...).
"""

from __future__ import annotations

import json

_UNITS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,
    "\u03bcs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
_MAX = (1 << 63) - 1


def parse_duration(text: str) -> int:
    orig = json.dumps(text, ensure_ascii=False)
    s = text
    neg = False
    if s and s[0] in "+-":
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if s == "":
        raise ValueError(f"time: invalid duration {orig}")
    total = 0
    while s:
        i = 0
        while i < len(s) and s[i].isdigit() and s[i].isascii():
            i += 1
        whole = s[:i]
        s = s[i:]
        frac = ""
        if s.startswith("."):
            s = s[1:]
            j = 0
            while j < len(s) and s[j].isdigit() and s[j].isascii():
                j += 1
            frac = s[:j]
            s = s[j:]
        if whole == "" and frac == "":
            raise ValueError(f"time: invalid duration {orig}")
        k = 0
        while k < len(s) and s[k] != "." and not (s[k].isdigit() and s[k].isascii()):
            k += 1
        unit = s[:k]
        s = s[k:]
        if unit == "":
            raise ValueError(f"time: missing unit in duration {orig}")
        if unit not in _UNITS:
            raise ValueError(
                f"time: unknown unit {json.dumps(unit, ensure_ascii=False)} in duration {orig}"
            )
        scale = _UNITS[unit]
        value = int(whole or "0") * scale
        if frac:
            value += int(frac) * scale // (10 ** len(frac))
        total += value
        if total > _MAX:
            raise ValueError(f"time: invalid duration {orig}")
    return -total if neg else total
