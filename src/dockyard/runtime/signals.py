"""Signal names → numbers for Linux without ``import signal`` (which imports ``enum``)."""

from __future__ import annotations

from dockyard.errors import InvalidArgument

NUMBERS = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7,
    "FPE": 8, "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14,
    "TERM": 15, "STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21,
    "TTOU": 22, "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28,
    "IO": 29, "POLL": 29, "PWR": 30, "SYS": 31,
}


def parse(text: str) -> int:
    """``KILL``, ``SIGKILL``, ``9`` and ``RTMIN+3`` → number; ``InvalidArgument`` otherwise."""
    t = text.strip().upper()
    if t.isdigit():
        n = int(t)
        if 0 < n < 65:
            return n
        raise InvalidArgument(f"invalid signal {text!r}")
    t = t.removeprefix("SIG")
    if t in NUMBERS:
        return NUMBERS[t]
    if t.startswith("RTMIN") or t.startswith("RTMAX"):
        base = 34 if t.startswith("RTMIN") else 64
        off = t[5:]
        try:
            n = base + (int(off) if off else 0)
        except ValueError:
            n = 0
        if 34 <= n <= 64:
            return n
    raise InvalidArgument(f"unknown signal {text!r}")
