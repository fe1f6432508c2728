"""Docker's human-readable units (go-units), shared by the Engine API's texts and the CLI.

No imports: the CLI's fast verbs load this module on their start-up path.
"""

from __future__ import annotations


def human_duration(seconds: float) -> str:
    """docker's units.HumanDuration: "Less than a second", "About an hour", "3 weeks"...

    Hours round half up and years count whole hours, as go-units does."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    m = s // 60
    if m == 1:
        return "About a minute"
    if m < 60:
        return f"{m} minutes"
    h = int(seconds / 3600 + 0.5)
    if h == 1:
        return "About an hour"
    if h < 48:
        return f"{h} hours"
    if h < 24 * 7 * 2:
        return f"{h // 24} days"
    if h < 24 * 30 * 2:
        return f"{h // 24 // 7} weeks"
    if h < 24 * 365 * 2:
        return f"{h // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"
