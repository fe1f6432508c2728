"""Image references: docker's grammar, normalisation and familiar (display) names.

Pure data, no I/O. The grammar is the one of distribution/reference::

    reference       := name [ ":" tag ] [ "@" digest ]
    name            := [domain "/"] path-component ["/" path-component]*
    domain          := host [":" port]
    path-component  := [a-z0-9]+ ((\\.|_|__|-+) [a-z0-9]+)*
    tag             := [\\w][\\w.-]{0,127}
    digest          := algorithm ":" hex (32+ hex digits)

Normalisation (what ``docker`` does to what a user types)::

    busybox                    -> docker.io/library/busybox:latest
    me/app:1                   -> docker.io/me/app:1
    index.docker.io/busybox    -> docker.io/library/busybox:latest
    localhost:5000/app         -> localhost:5000/app:latest
    busybox@sha256:<hex>       -> docker.io/library/busybox@sha256:<hex>   (no tag added)

and back for display (``RepoTags`` shows ``busybox:latest``): :meth:`Reference.familiar`.
Malformed input raises ``InvalidArgument("invalid reference format...")`` naming the input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from dockyard.errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEP = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEP}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN = rf"(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_REFERENCE_RE = re.compile(rf"^({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?$")
# A name containing upper case letters is not a valid name but deserves its own message.
_ANY_CASE_NAME_RE = re.compile(
    rf"^((?:{_DOMAIN}/)?[a-zA-Z0-9]+(?:{_SEP}[a-zA-Z0-9]+)*(?:/[a-zA-Z0-9]+(?:{_SEP}[a-zA-Z0-9]+)*)*)"
    rf"(?::({_TAG}))?(?:@({_DIGEST}))?$"
)
_TAG_RE = re.compile(rf"^{_TAG}$")
_HEX64_RE = re.compile(r"^[a-f0-9]{64}$")


@dataclass(frozen=True, slots=True)
class Reference:
    """A fully normalised reference: ``domain/path[:tag][@digest]``."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The full repository name, e.g. ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        s = self.name
        if self.tag is not None:
            s += f":{self.tag}"
        if self.digest is not None:
            s += f"@{self.digest}"
        return s

    @property
    def familiar_name(self) -> str:
        """``busybox`` for docker.io/library/busybox, ``me/app`` for docker.io/me/app."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        path = self.path
        if path.startswith(OFFICIAL_REPO_PREFIX) and "/" not in path[len(OFFICIAL_REPO_PREFIX):]:
            path = path[len(OFFICIAL_REPO_PREFIX):]
        return path

    def familiar(self) -> str:
        """The display form (``busybox:latest``, ``me/app@sha256:...``)."""
        s = self.familiar_name
        if self.tag is not None:
            s += f":{self.tag}"
        if self.digest is not None:
            s += f"@{self.digest}"
        return s

    def with_tag(self, tag: str) -> Reference:
        if not _TAG_RE.match(tag):
            raise InvalidArgument(f"invalid tag format: {tag!r}")
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> Reference:
        return replace(self, tag=None, digest=digest)

    def name_only(self) -> Reference:
        return Reference(self.domain, self.path)


def _split_domain(name: str) -> tuple[str, str]:
    i = name.find("/")
    if i == -1 or (
        not any(c in name[:i] for c in ".:") and name[:i] != "localhost" and name[:i].islower()
    ):
        domain, rest = DEFAULT_DOMAIN, name
    else:
        domain, rest = name[:i], name[i + 1 :]
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in rest:
        rest = OFFICIAL_REPO_PREFIX + rest
    return domain, rest


def parse(s: str) -> Reference:
    """Parse and normalise without adding a default tag (``busybox`` stays tagless)."""
    if not s:
        raise InvalidArgument("invalid reference format: repository name must have at least one component")
    if _HEX64_RE.match(s):
        raise InvalidArgument(
            f"invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
        )
    m = _REFERENCE_RE.match(s)
    if not m:
        m2 = _ANY_CASE_NAME_RE.match(s)
        if m2:
            domain, rest = _split_domain(m2.group(1))
            if rest != rest.lower():
                raise InvalidArgument(
                    f"invalid reference format: repository name ({rest}) must be lowercase"
                )
        raise InvalidArgument(f"invalid reference format: {s!r}")
    name, tag, digest = m.group(1), m.group(2), m.group(3)
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidArgument(
            f"invalid reference format: repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
        )
    domain, path = _split_domain(name)
    if path != path.lower():
        raise InvalidArgument(f"invalid reference format: repository name ({path}) must be lowercase")
    if digest is not None:
        alg, _, hx = digest.partition(":")
        if alg == "sha256" and len(hx) != 64:
            raise InvalidArgument(f"invalid reference format: invalid digest {digest!r}")
    return Reference(domain, path, tag, digest)


def parse_normalized(s: str) -> Reference:
    """Parse and add ``:latest`` when neither tag nor digest is given (docker's TagNameOnly)."""
    ref = parse(s)
    if ref.tag is None and ref.digest is None:
        ref = replace(ref, tag=DEFAULT_TAG)
    return ref


def is_valid_tag(tag: str) -> bool:
    return bool(_TAG_RE.match(tag))


def familiar(s: str) -> str:
    """Shortcut: the display form of a full reference string."""
    return parse(s).familiar()
