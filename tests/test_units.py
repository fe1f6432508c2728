"""dockyard.units: go-units' HumanDuration, which both the API's Status texts and the CLI print."""

from __future__ import annotations

from dockyard.units import human_duration


def test_human_duration_matches_go_units() -> None:
    cases = {0.5: "Less than a second", 1: "1 second", 59: "59 seconds", 60: "About a minute",
             3000: "50 minutes", 3600: "About an hour", 2.5 * 3600: "3 hours",  # half up, as Go
             3 * 86400: "3 days", 3 * 7 * 86400: "3 weeks", 90 * 86400: "3 months",
             3 * 365 * 86400: "3 years"}
    assert {s: human_duration(s) for s in cases} == cases
