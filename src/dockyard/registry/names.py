"""Repository-name and tag grammar of the OCI distribution spec.

Kept here (not in ``oci/``) because only the registry server needs the bare path grammar.
"""

from __future__ import annotations

import re

from dockyard.registry.errcodes import NameInvalid, TagInvalid

# spec.md "Pulling manifests": <name> and <tag> grammars.
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
# Clients limit "host:port/name" to 255 characters; 255 bounds the name on its own.
MAX_NAME_LEN = 255


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid repository name, else raise NameInvalid."""
    if len(name) > MAX_NAME_LEN or not NAME_RE.match(name):
        raise NameInvalid(f"invalid repository name {name!r}", detail={"name": name})
    return name


def check_tag(tag: str) -> str:
    if not TAG_RE.match(tag):
        raise TagInvalid(f"invalid tag {tag!r}", detail={"tag": tag})
    return tag


def valid_tag(tag: str) -> bool:
    return TAG_RE.match(tag) is not None


def is_digest_ref(ref: str) -> bool:
    """A manifest reference is a digest when it has ``alg:``; tags can't contain ':'."""
    return ":" in ref
