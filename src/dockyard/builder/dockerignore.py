""".dockerignore: which files of a build context are sent, with Docker's exact matching rules.

Reading (``read_patterns``, docker's ignorefile.ReadAll): lines starting with ``#`` are
comments; blanks around a line are trimmed; empty lines are skipped; ``!`` marks an exception
(blanks after it trimmed too); every pattern is cleaned like Go's ``filepath.Clean`` (``./a``
-> ``a``, ``a//b/../c`` -> ``a/c``) and a leading ``/`` is dropped (``/a`` means ``a`` at the
context root). A UTF-8 BOM on the first line is ignored.

Matching (:class:`PatternMatcher`, moby/patternmatcher): patterns are Go ``filepath.Match``
globs (``*`` and ``?`` never cross ``/``; ``[a-z]``, ``[^a]`` classes; ``\\`` escapes) plus
``**`` for any number of path segments (``**/x``, ``a/**``, ``a/**/b``). A path is excluded when
the last pattern that matches it, or one of its parent directories, is not an exception.
Malformed patterns (``[``, ``a\\``, ``[]a]``, a lone ``!``) raise InvalidArgument.

Where the file is (``find_ignore_file``): ``<Dockerfile path>.dockerignore`` next to the
Dockerfile wins over ``<context>/.dockerignore``. The client always sends the Dockerfile and
.dockerignore (``keep_build_files``); the daemon drops them after reading them if the patterns
exclude them (``build_files_to_remove``).

Walking (``walk_context``): yields the included entries of a context directory as relative
``/`` paths, parents before children, sorted by name, without following symlinks. An excluded
directory is not yielded; it is only entered when an exception pattern could re-include
something under it.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from dockyard.errors import InvalidArgument

_BOM = "\ufeff"
_GLOB_CHARS = frozenset("*?[\\")


def go_clean(path: str) -> str:
    """Go's ``path.Clean`` (slash-separated)."""
    if path == "":
        return "."
    rooted = path.startswith("/")
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not rooted:
                out.append("..")
            continue
        out.append(part)
    cleaned = "/".join(out)
    if rooted:
        return "/" + cleaned
    return cleaned or "."


def read_patterns(text: str) -> list[str]:
    """Patterns of a .dockerignore file, cleaned (see module docstring)."""
    out: list[str] = []
    for n, raw in enumerate(text.split("\n")):
        line = raw[:-1] if raw.endswith("\r") else raw
        if n == 0 and line.startswith(_BOM):
            line = line[1:]
        if line.startswith("#"):
            continue
        pattern = line.strip()
        if pattern == "":
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = go_clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        out.append("!" + pattern if invert else pattern)
    return out


def validate_glob(pattern: str) -> None:
    """Reject what Go's filepath.Match calls ErrBadPattern."""
    bad = InvalidArgument(f"syntax error in pattern: {pattern!r}")
    n = len(pattern)

    def get_esc(i: int) -> int:
        if i >= n or pattern[i] in "-]":
            raise bad
        if pattern[i] == "\\":
            i += 1
            if i >= n:
                raise bad
        i += 1
        if i >= n:
            raise bad
        return i

    i = 0
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n:
                raise bad
            i += 2
        elif c == "[":
            i += 1
            if i < n and pattern[i] == "^":
                i += 1
            nrange = 0
            while True:
                if i < n and pattern[i] == "]" and nrange > 0:
                    i += 1
                    break
                i = get_esc(i)
                if pattern[i] == "-":
                    i = get_esc(i + 1)
                nrange += 1
        else:
            i += 1


_ESCAPE = frozenset(".+()|{}$^")


@dataclass(frozen=True)
class Pattern:
    text: str  # cleaned, without the leading "!"
    exclusion: bool
    kind: str  # exact | prefix | suffix | regexp
    regexp: re.Pattern[str] | None

    def match(self, path: str) -> bool:
        if self.kind == "exact":
            return path == self.text
        if self.kind == "prefix":
            return path.startswith(self.text[:-2])
        if self.kind == "suffix":
            suffix = self.text[2:]
            if path.endswith(suffix):
                return True
            return suffix.startswith("/") and path == suffix[1:]
        assert self.regexp is not None
        return self.regexp.fullmatch(path) is not None


def compile_pattern(text: str, exclusion: bool = False) -> Pattern:
    """moby/patternmatcher's compile: pick the cheapest match kind, else build a regexp."""
    reg: list[str] = []
    kind = "exact"
    i, n, step = 0, len(text), 0
    in_class = False
    while i < n:
        ch = text[i]
        i += 1
        if in_class:
            if ch == "]":
                in_class = False
                reg.append("]")
            elif ch == "\\" and i < n:
                reg.append(re.escape(text[i]))
                i += 1
            elif ch == "^" and reg and reg[-1] == "[":
                reg.append("^")
            elif ch == "-":
                reg.append("-")
            else:
                reg.append(re.escape(ch))
        elif ch == "*":
            if i < n and text[i] == "*":
                i += 1
                if i < n and text[i] == "/":
                    i += 1
                if i >= n:
                    if kind == "exact":
                        kind = "prefix"
                    else:
                        reg.append(".*")
                        kind = "regexp"
                else:
                    reg.append("(?:.*/)?")
                    kind = "regexp"
                if step == 0:
                    kind = "suffix"
            else:
                reg.append("[^/]*")
                kind = "regexp"
        elif ch == "?":
            reg.append("[^/]")
            kind = "regexp"
        elif ch == "\\":
            if i < n:
                reg.append(re.escape(text[i]))
                i += 1
                kind = "regexp"
            else:
                reg.append(re.escape("\\"))
        elif ch == "[":
            reg.append("[")
            in_class = True
            kind = "regexp"
        elif ch in _ESCAPE:
            reg.append("\\" + ch)
        else:
            reg.append(re.escape(ch))
        step += 1
    rx = None
    if kind == "regexp":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                rx = re.compile("".join(reg))
            except re.error as err:
                raise InvalidArgument(f"syntax error in pattern: {text!r}: {err}") from None
    return Pattern(text, exclusion, kind, rx)


class PatternMatcher:
    """An ordered list of patterns; later patterns override earlier ones."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns: list[Pattern] = []
        self.exclusions = False
        for p in patterns:
            p = p.strip()
            if p == "":
                continue
            p = go_clean(p)
            exclusion = p.startswith("!")
            if exclusion:
                if len(p) == 1:
                    raise InvalidArgument('illegal exclusion pattern: "!"')
                p = p[1:]
                self.exclusions = True
            validate_glob(p)
            self.patterns.append(compile_pattern(p, exclusion))

    def matches(self, path: str) -> bool:
        """True if ``path`` (relative, ``/``-separated) is excluded (MatchesOrParentMatches)."""
        path = go_clean(path)
        if path == ".":
            return False  # the context root itself is never excluded
        parent = os.path.dirname(path)
        parents = parent.split("/") if parent else []
        matched = False
        for pat in self.patterns:
            if pat.exclusion != matched:
                continue
            hit = pat.match(path)
            if not hit:
                for k in range(len(parents)):
                    if pat.match("/".join(parents[: k + 1])):
                        hit = True
                        break
            if hit:
                matched = not pat.exclusion
        return matched

    def may_reinclude_under(self, directory: str) -> bool:
        """Could an exception pattern match something inside ``directory``?"""
        prefix = directory + "/"
        for pat in self.patterns:
            if not pat.exclusion:
                continue
            if (pat.text + "/").startswith(prefix) or _GLOB_CHARS & set(pat.text):
                return True
        return False


def find_ignore_file(context: Path, dockerfile: str | Path = "Dockerfile") -> Path | None:
    """The ignore file that applies: ``<Dockerfile>.dockerignore``, else ``.dockerignore``."""
    df = Path(dockerfile)
    if not df.is_absolute():
        df = context / df
    specific = df.with_name(df.name + ".dockerignore")
    if specific.is_file():
        return specific
    default = context / ".dockerignore"
    return default if default.is_file() else None


def keep_build_files(patterns: list[str], dockerfile: str = "Dockerfile") -> list[str]:
    """Docker's TrimBuildFilesFromExcludes: the Dockerfile and .dockerignore are always sent."""
    out = list(patterns)
    if PatternMatcher(out).matches(".dockerignore"):
        out.append("!.dockerignore")
    df = dockerfile.replace(os.sep, "/")
    if PatternMatcher(out).matches(df):
        out.append("!" + df)
    return out


def build_files_to_remove(patterns: list[str], dockerfile: str = "Dockerfile") -> list[str]:
    """What the daemon drops from a received context once the Dockerfile is read (moby's
    removeDockerfile): ``.dockerignore`` and the Dockerfile, when the patterns exclude them
    (the client sent them anyway, see ``keep_build_files``)."""
    matcher = PatternMatcher(patterns)
    out = []
    for name in (".dockerignore", dockerfile.replace(os.sep, "/")):
        if matcher.matches(name) and name not in out:
            out.append(name)
    return out


def load_patterns(context: Path, dockerfile: str | Path = "Dockerfile") -> list[str]:
    path = find_ignore_file(context, dockerfile)
    if path is None:
        return []
    return read_patterns(path.read_text(encoding="utf-8", errors="replace"))


@dataclass(frozen=True)
class ContextEntry:
    path: str  # relative, "/"-separated
    kind: str  # "dir" | "file" | "symlink" | "other"


def walk_context(context: Path, patterns: Iterable[str]) -> Iterator[ContextEntry]:
    """Included entries of ``context`` in a stable order (see module docstring)."""
    matcher = PatternMatcher(patterns)

    def walk(abs_dir: Path, rel_dir: str) -> Iterator[ContextEntry]:
        with os.scandir(abs_dir) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            rel = f"{rel_dir}/{e.name}" if rel_dir else e.name
            excluded = matcher.matches(rel)
            if e.is_dir(follow_symlinks=False):
                if not excluded:
                    yield ContextEntry(rel, "dir")
                    yield from walk(Path(e.path), rel)
                elif matcher.exclusions and matcher.may_reinclude_under(rel):
                    yield from walk(Path(e.path), rel)
            elif not excluded:
                if e.is_symlink():
                    kind = "symlink"
                elif e.is_file(follow_symlinks=False):
                    kind = "file"
                else:
                    kind = "other"
                yield ContextEntry(rel, kind)

    yield from walk(context, "")
