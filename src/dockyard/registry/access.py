"""Scopes (``repository:team/app:pull,push``) and the access rules that grant them.

A rule grants ``actions`` on repositories matching the ``name`` glob to ``account``: a user
name, ``*`` (any authenticated account) or ``anonymous``. Without rules, every authenticated
account may do everything and anonymous nobody. ``registry:catalog:*`` is granted to any
authenticated account (and to anonymous only when some rule names ``anonymous``).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from dockyard.errors import InvalidArgument
from dockyard.registry.config import AccessRule

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Scope:
    type: str                 # "repository" or "registry"
    name: str
    actions: tuple[str, ...]

    @classmethod
    def parse(cls, s: str) -> Scope:
        # The name may itself contain ':' (host:port in proxies), so split from the ends.
        typ, _, rest = s.partition(":")
        name, sep, actions = rest.rpartition(":")
        if not typ or not sep or not name:
            raise InvalidArgument(f"invalid scope {s!r}")
        return cls(typ, name, tuple(a for a in actions.split(",") if a))

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"


def granted(rules: tuple[AccessRule, ...], account: str, scope: Scope) -> tuple[str, ...]:
    """The subset of ``scope.actions`` that ``account`` may perform."""
    if scope.type == "registry":
        if scope.name != "catalog":
            return ()
        ok = account != ANONYMOUS or any(r.account == ANONYMOUS for r in rules)
        return scope.actions if ok else ()
    if scope.type != "repository":
        return ()
    if not rules:
        return scope.actions if account != ANONYMOUS else ()
    allowed: set[str] = set()
    for r in rules:
        who = (r.account == account
               or (r.account == "*" and account != ANONYMOUS))
        if who and fnmatch.fnmatchcase(scope.name, r.name):
            allowed.update(r.actions)
    if "*" in allowed:
        return scope.actions
    return tuple(a for a in scope.actions if a in allowed)
