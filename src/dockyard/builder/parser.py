"""Dockerfile text -> parsed nodes (the first stage of the front end), as BuildKit's parser does it.

Contract: ``parse(text)`` returns a :class:`ParseResult` whose ``nodes`` are the instructions in
file order, each with its 1-based ``start_line``/``end_line``, its keyword, its builder flags
(``--from=x``...), its arguments split the way BuildKit's line parsers split them, whether the
arguments were a JSON array (exec form), and its heredoc bodies. Nothing is expanded here and
unknown keywords are kept (``instructions.from_node`` rejects them, with BuildKit's message).
Errors raise :class:`dockyard.errors.InvalidArgument` with
``dockerfile parse error on line N: <what>``.

The rules, all from BuildKit's ``frontend/dockerfile/parser``:

* Parser directives (``# syntax=``, ``# escape=``, ``# check=``; keys case-insensitive) are only
  looked for until the first line that is not a known directive (a comment, an empty line,
  an instruction); each may appear once. ``escape`` is ``\\`` or a backtick.
* Leading whitespace before instructions and comments is dropped; a line whose first
  non-blank character is ``#`` is a comment.
* A line ending in the escape character (optionally followed by blanks) continues on the next
  line; inside a continuation, comment lines and empty lines are skipped (an empty line adds a
  warning, as BuildKit does). The escape character and the newline vanish; nothing else does.
* ``RUN``, ``COPY``, ``ADD`` (also behind ``ONBUILD``) in shell form may carry heredocs
  (``<<EOF``, ``<<-EOF``, ``<<"EOF"``, ``3<<EOF``, several on one line); their bodies are the
  following lines up to the delimiter line. ``<<-`` lets the delimiter line be indented with
  tabs; the body is kept raw here (``Heredoc.chomped`` strips the tabs).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from dockyard.errors import InvalidArgument

DEFAULT_ESCAPE = "\\"

# Go's unicode.IsSpace for the Latin-1 range; above it Python's notion agrees closely enough.
_GO_SPACE = frozenset("\t\n\v\f\r \x85\xa0")


def is_space(ch: str) -> bool:
    """Go's ``unicode.IsSpace`` (Python's ``str.isspace`` also counts \\x1c-\\x1f)."""
    return ch in _GO_SPACE or (ord(ch) > 0xFF and ch.isspace())


def go_trim_left(s: str) -> str:
    i = 0
    while i < len(s) and is_space(s[i]):
        i += 1
    return s[i:]


def go_trim(s: str) -> str:
    s = go_trim_left(s)
    j = len(s)
    while j > 0 and is_space(s[j - 1]):
        j -= 1
    return s[:j]


_WHITESPACE = re.compile(r"[\t\v\f\r ]+")
_DIRECTIVE = re.compile(
    r"^#[\t\n\f\r ]*([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*\Z"
)
_HEREDOC_WORD = re.compile(r"^([0-9]*)<<(-?)([^<]*)\Z")
_LEADING_TABS = re.compile(r"^\t+", re.MULTILINE)
_BOM = "\ufeff"

KNOWN_DIRECTIVES = ("syntax", "escape", "check")
# Instructions whose shell form may carry heredocs, and the one that may wrap them.
HEREDOC_INSTRUCTIONS = frozenset({"add", "copy", "run"})
HEREDOC_COMPOUND = frozenset({"onbuild"})


@dataclass(frozen=True)
class Heredoc:
    """One here-document: ``<<[-]NAME`` on the instruction line and the body that followed."""

    name: str
    content: str
    file_descriptor: int = 0
    expand: bool = True  # False when any part of the delimiter word was quoted
    chomp: bool = False  # ``<<-``: leading tabs are stripped from body lines

    @property
    def chomped(self) -> str:
        """The body as the shell would see it (leading tabs removed for ``<<-``)."""
        return chomp_heredoc(self.content) if self.chomp else self.content


@dataclass(frozen=True)
class Directive:
    name: str  # lower case
    value: str
    line: int


@dataclass(frozen=True)
class Node:
    """One instruction as parsed, before typing.

    ``keyword`` is lower case; ``args`` follow BuildKit's per-instruction line parsers: ENV and
    LABEL give flat key, value pairs; FROM, EXPOSE and shell-form COPY/ADD/VOLUME split on
    blanks; ARG splits into words (quotes kept); RUN/CMD/ENTRYPOINT/SHELL in shell form give one
    string; HEALTHCHECK gives its type then the command; ONBUILD gives nothing and sets ``sub``.
    """

    keyword: str
    original_keyword: str
    args: tuple[str, ...]
    flags: tuple[str, ...]
    json: bool
    original: str
    start_line: int
    end_line: int
    heredocs: tuple[Heredoc, ...] = ()
    sub: Node | None = None


@dataclass(frozen=True)
class ParseResult:
    nodes: tuple[Node, ...]
    escape: str
    directives: tuple[Directive, ...]
    warnings: tuple[str, ...]

    def directive(self, name: str) -> str | None:
        for d in self.directives:
            if d.name == name:
                return d.value
        return None


def parse_error(line: int, message: str) -> InvalidArgument:
    return InvalidArgument(f"dockerfile parse error on line {line}: {message}")


def chomp_heredoc(content: str) -> str:
    return _LEADING_TABS.sub("", content)


class _Directives:
    """Parser-directive state: recognises directives at the top and owns the escape token."""

    def __init__(self) -> None:
        self.done = False
        self.seen: dict[str, Directive] = {}
        self.escape = DEFAULT_ESCAPE
        self._set_continuation()

    def _set_continuation(self) -> None:
        e = re.escape(self.escape)
        # The escape char, then optional blanks, at the end of the line continues it, unless
        # the escape char is itself escaped (BuildKit's regexp, quirks included).
        self.continuation = re.compile(rf"([^{e}]){e}[ \t]*\Z|^{e}[ \t]*\Z")

    def feed(self, line: str, lineno: int) -> None:
        if self.done:
            return
        m = _DIRECTIVE.match(line)
        if m is None:
            self.done = True
            return
        key = m.group(1).lower()
        if key not in KNOWN_DIRECTIVES:
            self.done = True
            return
        if key in self.seen:
            raise parse_error(lineno, f"only one {key} parser directive can be used")
        value = m.group(2)
        self.seen[key] = Directive(key, value, lineno)
        if key == "escape":
            if value not in ("`", "\\"):
                raise parse_error(lineno, f"invalid escape token '{value}' does not match ` or \\")
            self.escape = value
            self._set_continuation()


def _split_lines(text: str) -> list[str]:
    """Split keeping line endings, on ``\\n`` only (as Go's bufio line scanner does)."""
    out: list[str] = []
    start = 0
    while True:
        i = text.find("\n", start)
        if i < 0:
            if start < len(text):
                out.append(text[start:])
            return out
        out.append(text[start : i + 1])
        start = i + 1


def _trim_newline(s: str) -> str:
    return s.rstrip("\r\n")


def _is_comment(raw: str) -> bool:
    return go_trim_left(_trim_newline(raw)).startswith("#")


def parse(source: str | bytes) -> ParseResult:
    """Parse Dockerfile text. Raises InvalidArgument naming the line on malformed input."""
    text = source.decode("utf-8", errors="replace") if isinstance(source, bytes) else source
    lines = _split_lines(text)
    d = _Directives()
    nodes: list[Node] = []
    warnings: list[str] = []
    i = 0
    current = 0
    while i < len(lines):
        raw = lines[i]
        i += 1
        if current == 0 and raw.startswith(_BOM):
            raw = raw[1:]
        token = go_trim_left(_trim_newline(raw))
        d.feed(token, current + 1)
        if token.startswith("#"):
            token = ""
        current += 1
        start = current
        line, ended = _trim_continuation(token, d)
        if ended and line == "":
            continue
        empty_continuation = False
        while not ended and i < len(lines):
            raw = lines[i]
            i += 1
            cont = _trim_newline(raw)
            d.feed(cont, current + 1)
            current += 1
            if _is_comment(raw):
                continue
            if go_trim_left(cont) == "":
                empty_continuation = True
                continue
            cont, ended = _trim_continuation(cont, d)
            line += cont
        if empty_continuation:
            warnings.append(f"Empty continuation line found in: {line}")
        try:
            node_parts = _node_from_line(line, d.escape)
        except InvalidArgument as err:
            raise parse_error(start, str(err)) from None
        heredocs: list[Heredoc] = []
        if _can_contain_heredoc(node_parts):
            for name, fd, expand, chomp in _heredocs_from_line(line, start):
                body: list[str] = []
                terminated = False
                while i < len(lines):
                    raw = lines[i]
                    i += 1
                    current += 1
                    candidate = _trim_newline(raw)
                    if chomp:
                        candidate = candidate.lstrip("\t")
                    if candidate == name:
                        terminated = True
                        break
                    body.append(raw)
                if not terminated:
                    raise parse_error(start, "unterminated heredoc")
                heredocs.append(Heredoc(name, "".join(body), fd, expand, chomp))
        nodes.append(_finish(node_parts, line, start, current, tuple(heredocs)))
    if not nodes:
        raise parse_error(max(current, 1), "file with no instructions")
    return ParseResult(tuple(nodes), d.escape, tuple(d.seen.values()), tuple(warnings))


def _trim_continuation(line: str, d: _Directives) -> tuple[str, bool]:
    m = d.continuation.search(line)
    if m is None:
        return line, True
    return line[: m.start()] + (m.group(1) or ""), False


@dataclass(frozen=True)
class _Parts:
    keyword: str
    original_keyword: str
    flags: tuple[str, ...]
    args: tuple[str, ...]
    json: bool
    sub: _Parts | None
    rest: str


def _finish(p: _Parts, line: str, start: int, end: int, heredocs: tuple[Heredoc, ...]) -> Node:
    sub = None
    if p.sub is not None:
        sub = _finish(p.sub, p.rest, start, end, heredocs)
    return Node(
        keyword=p.keyword,
        original_keyword=p.original_keyword,
        args=p.args,
        flags=p.flags,
        json=p.json,
        original=line,
        start_line=start,
        end_line=end,
        heredocs=heredocs,
        sub=sub,
    )


def _can_contain_heredoc(p: _Parts) -> bool:
    if p.keyword in HEREDOC_COMPOUND and p.sub is not None:
        p = p.sub
    return p.keyword in HEREDOC_INSTRUCTIONS and not p.json


def _node_from_line(line: str, escape: str) -> _Parts:
    parts = _WHITESPACE.split(go_trim(line), maxsplit=1)
    keyword = parts[0]
    rest, flags = "", []
    if len(parts) == 2:
        rest, flags = extract_builder_flags(parts[1])
    rest = go_trim(rest)
    kw = keyword.lower()
    sub = None
    is_json = False
    args: list[str]
    if kw in ("add", "copy", "volume"):
        args, is_json = _maybe_json_to_list(rest)
    elif kw in ("cmd", "entrypoint", "run", "shell"):
        args, is_json = _maybe_json(rest)
    elif kw == "arg":
        args = split_words(rest, escape)
    elif kw in ("env", "label"):
        args = _name_val(rest, kw.upper(), escape)
    elif kw in ("expose", "from"):
        args = _whitespace_delimited(rest)
    elif kw in ("maintainer", "stopsignal", "user", "workdir"):
        args = [rest] if rest else []
    elif kw == "healthcheck":
        args, is_json = _health_config(rest)
    elif kw == "onbuild":
        args = []
        if rest:
            sub = _node_from_line(rest, escape)
    else:
        args = []  # unknown instruction: kept, rejected when typed
    return _Parts(kw, keyword, tuple(flags), tuple(args), is_json, sub, rest)


def extract_builder_flags(line: str) -> tuple[str, list[str]]:
    """Split leading ``--flag[=value]`` words off ``line`` (BuildKit's extractBuilderFlags)."""
    words: list[str] = []
    in_spaces, in_word, in_quote = 0, 1, 2
    phase = in_spaces
    word = ""
    quote = ""
    blank_ok = False
    pos = 0
    n = len(line)
    while pos <= n:
        ch = line[pos] if pos < n else ""
        if phase == in_spaces:
            if pos == n:
                break
            if is_space(ch):
                pos += 1
                continue
            if ch != "-" or pos + 1 == n or line[pos + 1] != "-":
                return line[pos:], words
            phase = in_word
        if phase in (in_word, in_quote) and pos == n:
            if word != "--" and (blank_ok or word):
                words.append(word)
            break
        if phase == in_word:
            if is_space(ch):
                phase = in_spaces
                if word == "--":
                    return line[pos:], words
                if blank_ok or word:
                    words.append(word)
                word = ""
                blank_ok = False
                pos += 1
                continue
            if ch in ("'", '"'):
                quote = ch
                blank_ok = True
                phase = in_quote
                pos += 1
                continue
            if ch == "\\":
                if pos + 1 == n:
                    pos += 1
                    continue
                pos += 1
                ch = line[pos]
            word += ch
            pos += 1
            continue
        # in_quote
        if ch == quote:
            phase = in_word
            pos += 1
            continue
        if ch == "\\":
            if pos + 1 == n:
                phase = in_word
                pos += 1
                continue
            pos += 1
            ch = line[pos]
        word += ch
        pos += 1
    return "", words


def split_words(rest: str, escape: str) -> list[str]:
    """Split on blanks, respecting quotes; quotes and escapes are kept (BuildKit's parseWords)."""
    words: list[str] = []
    in_spaces, in_word, in_quote = 0, 1, 2
    phase = in_spaces
    word = ""
    quote = ""
    blank_ok = False
    pos = 0
    n = len(rest)
    while pos <= n:
        ch = rest[pos] if pos < n else ""
        if phase == in_spaces:
            if pos == n:
                break
            if is_space(ch):
                pos += 1
                continue
            phase = in_word
        if phase in (in_word, in_quote) and pos == n:
            if blank_ok or word:
                words.append(word)
            break
        if phase == in_word:
            if is_space(ch):
                phase = in_spaces
                if blank_ok or word:
                    words.append(word)
                word = ""
                blank_ok = False
                pos += 1
                continue
            if ch in ("'", '"'):
                quote = ch
                blank_ok = True
                phase = in_quote
            if ch == escape:
                if pos + 1 == n:
                    pos += 1
                    continue  # an escape at the very end is dropped
                word += ch
                pos += 1
                ch = rest[pos]
            word += ch
            pos += 1
            continue
        # in_quote
        if ch == quote:
            phase = in_word
        if ch == escape and quote != "'":
            if pos + 1 == n:
                phase = in_word
                pos += 1
                continue
            pos += 1
            word += ch
            ch = rest[pos]
        word += ch
        pos += 1
    return words


def _name_val(rest: str, key: str, escape: str) -> list[str]:
    words = split_words(rest, escape)
    if not words:
        return []
    if "=" not in words[0]:
        # legacy ``ENV name value...``: everything after the first blank run is the value
        parts = _WHITESPACE.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise InvalidArgument(f"{key} must have two arguments")
        return [parts[0], parts[1]]
    out: list[str] = []
    for word in words:
        if "=" not in word:
            raise InvalidArgument(
                f"Syntax error - can't find = in {_go_quote(word)}. Must be of the form: name=value"
            )
        k, v = word.split("=", 1)
        out += [k, v]
    return out


def _whitespace_delimited(rest: str) -> list[str]:
    if rest == "":
        return []
    return _WHITESPACE.split(rest)


class _NotStrings(Exception):
    pass


def _reject_constant(name: str) -> float:
    raise ValueError(name)  # Go's decoder has no NaN/Infinity


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _parse_json(rest: str) -> list[str] | None:
    """A JSON array of strings, or None when ``rest`` is not JSON (shell form)."""
    rest = go_trim_left(rest)
    if not rest.startswith("["):
        return None
    try:
        value, _ = _DECODER.raw_decode(rest)  # like Go's json.Decoder: trailing text is ignored
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise InvalidArgument(
            "when using JSON array syntax, arrays must be comprised of strings only"
        )
    return value


def _maybe_json(rest: str) -> tuple[list[str], bool]:
    if rest == "":
        return [], False
    parsed = _parse_json(rest)
    if parsed is not None:
        return parsed, True
    return [rest], False


def _maybe_json_to_list(rest: str) -> tuple[list[str], bool]:
    parsed = _parse_json(rest)
    if parsed is not None:
        return parsed, True
    return _whitespace_delimited(rest), False


def _health_config(rest: str) -> tuple[list[str], bool]:
    sep = 0
    while sep < len(rest) and not is_space(rest[sep]):
        sep += 1
    if sep == 0:
        return [], False
    nxt = sep
    while nxt < len(rest) and is_space(rest[nxt]):
        nxt += 1
    cmd, is_json = _maybe_json(rest[nxt:])
    return [rest[:sep], *cmd], is_json


def _heredocs_from_line(line: str, lineno: int) -> list[tuple[str, int, bool, bool]]:
    # Imported here: expand imports this module for is_space.
    from dockyard.builder.expand import Lexer, LexError

    lex = Lexer("\\", raw_quotes=True, raw_escapes=True, skip_unset=True)
    try:
        words = lex.process_words(line, {})
    except LexError:
        return []
    out = []
    for word in words:
        try:
            doc = parse_heredoc_word(word)
        except InvalidArgument as err:
            raise parse_error(lineno, str(err)) from None
        if doc is not None:
            out.append(doc)
    return out


def parse_heredoc_word(word: str) -> tuple[str, int, bool, bool] | None:
    """``(name, fd, expand, chomp)`` if ``word`` is a heredoc marker such as ``<<-"EOF"``."""
    from dockyard.builder.expand import Lexer, LexError

    m = _HEREDOC_WORD.match(word)
    if m is None or m.group(3) == "":
        return None
    fd = int(m.group(1)) if m.group(1) else 0
    chomp = m.group(2) == "-"
    rest = m.group(3)
    try:
        words = Lexer("\\", skip_unset=True).process_words(rest, {})
        if len(words) != 1:
            return None
        raw = Lexer("\\", raw_quotes=True, skip_unset=True).process_words(rest, {})
    except LexError as err:
        raise InvalidArgument(str(err)) from None
    if len(raw) != len(words):
        raise InvalidArgument(f"internal lexing of heredoc produced inconsistent results: {rest}")
    name = words[0]
    quotes = name.count("'") + name.count('"')
    raw_quotes = raw[0].count("'") + raw[0].count('"')
    return name, fd, quotes == raw_quotes, chomp


def _go_quote(s: str) -> str:
    """Go's %q for ordinary strings."""
    return json.dumps(s, ensure_ascii=False)
