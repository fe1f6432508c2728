"""BuildKit's ``suggest.WrapError``: append `` (did you mean X?)`` when a close option exists.

An option is close when its Levenshtein distance to the value is below 3 (the closest wins);
an exact match means the error is about something else and gets no suggestion. With
``case_sensitive=False`` the suggestion follows the value's case (all lower / all upper).
"""

from __future__ import annotations


def _levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def suggest(
    message: str, value: str, options: list[str], case_sensitive: bool, prefix: str = ""
) -> str:
    """BuildKit's suggest.WrapError: append `` (did you mean X?)`` for a close option."""
    val = value if case_sensitive else value.lower()
    match, best = "", 3
    for opt in options:
        o = opt if case_sensitive else opt.lower()
        if o == val:
            return message
        d = _levenshtein(val, o)
        if d < best:
            best = d
            match = o
            if not case_sensitive:
                if value == value.lower():
                    match = o.lower()
                elif value == value.upper():
                    match = o.upper()
                else:
                    match = opt
    return f"{message} (did you mean {prefix}{match}?)" if match else message
