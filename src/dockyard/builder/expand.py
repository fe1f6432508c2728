"""Variable expansion and word splitting exactly as BuildKit's shell lexer does it.

Contract: ``Lexer(escape).process_word(word, env)`` expands ``$x``/``${x}`` and the modifiers
below, removes quotes and escapes, and returns one string; ``process_words`` does the same
and splits the result into words (blanks inside quotes, or produced by a variable's value
inside quotes, don't split). ``env`` is any mapping name -> value; a name absent from it is
*unset*, a name mapped to ``""`` is set and empty. Errors raise :class:`LexError` (an
InvalidArgument) with BuildKit's message, e.g. ``failed to process "${x": syntax error:
missing '}'``.

Supported forms (BuildKit's, which the Dockerfile reference documents):

    $name ${name}                 value, or "" if unset
    ${name:-word} ${name-word}    word if unset-or-empty / unset
    ${name:+word} ${name+word}    word if set-and-non-empty / set, else ""
    ${name:?msg}  ${name?msg}     error "name: msg" if unset-or-empty / unset
    ${name#pat} ${name##pat}      strip shortest / longest prefix matching glob pat
    ${name%pat} ${name%%pat}      strip shortest / longest suffix matching glob pat
    ${name/pat/repl} ${name//pat/repl}   replace first / all matches (longest) of pat
    \\$name  '...'  "..."           literal $, literal text, text with $ expansion

Patterns know ``*`` and ``?``; ``\\*``, ``\\?``, ``\\\\`` are literal, and ``\\}`` / ``\\/``
let ``}`` and ``/`` into a pattern. ``$1``, ``$@`` etc. read those names (always unset).

Which instructions expand (``expand_instruction``): ADD COPY ENV EXPOSE FROM LABEL STOPSIGNAL
USER VOLUME WORKDIR and RUN --mount values; RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK/ONBUILD are
left to the shell or to the downstream build; ARG is applied by ``scope.StageScope.declare``
(its default is expanded only when no build arg overrides it); ``COPY --from`` is never
expanded (BuildKit rejects variables there, see ``stages``). COPY/ADD heredoc bodies whose
delimiter was not quoted are expanded with quotes left alone (``expand_heredoc``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import TypeVar

from dockyard.errors import InvalidArgument


class LexError(InvalidArgument):
    """A word could not be expanded (unterminated quote, bad substitution, ${x?}...)."""


_EOF = ""


class _Inner(Exception):
    """An error inside the lexer, before ``failed to process ...`` is prefixed."""


def _is_space(ch: str) -> bool:
    from dockyard.builder.parser import is_space

    return is_space(ch)


def _is_letter(ch: str) -> bool:
    return ch.isalpha()


def _is_digit(ch: str) -> bool:
    return ch.isdecimal()


class _Words:
    def __init__(self) -> None:
        self.buf = ""
        self.words: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if _is_space(ch):
            if self.in_word and self.buf:
                self.words.append(self.buf)
                self.buf = ""
                self.in_word = False
        else:
            self.add_raw_char(ch)

    def add_raw_char(self, ch: str) -> None:
        self.buf += ch
        self.in_word = True

    def add_string(self, s: str) -> None:
        for ch in s:
            self.add_char(ch)

    def add_raw_string(self, s: str) -> None:
        self.buf += s
        self.in_word = True

    def get(self) -> list[str]:
        if self.buf:
            self.words.append(self.buf)
            self.buf = ""
            self.in_word = False
        return self.words


class Lexer:
    """BuildKit's ``shell.Lex``. Options mirror its fields:

    raw_quotes: keep quote characters in the output (used to detect quoted heredoc words);
    raw_escapes: keep escape characters in the output;
    skip_unset: leave references to unset variables as written;
    skip_quotes: quotes are ordinary characters (heredoc bodies).
    """

    def __init__(
        self,
        escape: str = "\\",
        *,
        raw_quotes: bool = False,
        raw_escapes: bool = False,
        skip_unset: bool = False,
        skip_quotes: bool = False,
    ) -> None:
        self.escape = escape
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes
        self.skip_unset = skip_unset
        self.skip_quotes = skip_quotes

    def process_word(self, word: str, env: Mapping[str, str]) -> str:
        return self._run(word, env)[0]

    def process_words(self, word: str, env: Mapping[str, str]) -> list[str]:
        return self._run(word, env)[1]

    def process_word_with_matches(
        self, word: str, env: Mapping[str, str]
    ) -> tuple[str, frozenset[str], frozenset[str]]:
        """Expanded word, names found in env, names looked up but unset."""
        sw = _ShellWord(self, word, env)
        result = sw.run()
        return result[0], frozenset(sw.matched), frozenset(sw.unmatched)

    def _run(self, word: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
        return _ShellWord(self, word, env).run()


class _ShellWord:
    def __init__(self, lex: Lexer, source: str, env: Mapping[str, str]) -> None:
        self.lex = lex
        self.source = source
        self.env = env
        self.pos = 0
        self.raw_escapes = lex.raw_escapes
        self.matched: set[str] = set()
        self.unmatched: set[str] = set()

    def run(self) -> tuple[str, list[str]]:
        try:
            return self.stop_on(_EOF, self.raw_escapes)
        except _Inner as err:
            raise LexError(f"failed to process {_go_quote(self.source)}: {err}") from None

    # scanner
    def peek(self) -> str:
        return self.source[self.pos] if self.pos < len(self.source) else _EOF

    def next(self) -> str:
        if self.pos >= len(self.source):
            return _EOF
        ch = self.source[self.pos]
        self.pos += 1
        return ch

    def stop_on(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        saved = self.raw_escapes
        self.raw_escapes = raw_escapes
        try:
            while self.peek() != _EOF:
                ch = self.peek()
                if stop != _EOF and ch == stop:
                    self.next()
                    return "".join(result), words.get()
                if ch == "$":
                    tmp = self.dollar()
                    result.append(tmp)
                    words.add_string(tmp)
                elif ch in ("'", '"') and not self.lex.skip_quotes:
                    tmp = self.single_quote() if ch == "'" else self.double_quote()
                    result.append(tmp)
                    words.add_raw_string(tmp)
                else:
                    ch = self.next()
                    if ch == self.lex.escape:
                        if self.raw_escapes:
                            words.add_raw_char(ch)
                            result.append(ch)
                        ch = self.next()
                        if ch == _EOF:
                            break
                        words.add_raw_char(ch)
                    else:
                        words.add_char(ch)
                    result.append(ch)
            if stop != _EOF:
                raise _Inner(f"unexpected end of statement while looking for matching {stop}")
            return "".join(result), words.get()
        finally:
            self.raw_escapes = saved

    def single_quote(self) -> str:
        out: list[str] = []
        ch = self.next()
        if self.lex.raw_quotes:
            out.append(ch)
        while True:
            ch = self.next()
            if ch == _EOF:
                raise _Inner("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                if self.lex.raw_quotes:
                    out.append(ch)
                return "".join(out)
            out.append(ch)

    def double_quote(self) -> str:
        out: list[str] = []
        ch = self.next()
        if self.lex.raw_quotes:
            out.append(ch)
        while True:
            nxt = self.peek()
            if nxt == _EOF:
                raise _Inner("unexpected end of statement while looking for matching double-quote")
            if nxt == '"':
                ch = self.next()
                if self.lex.raw_quotes:
                    out.append(ch)
                return "".join(out)
            if nxt == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == self.lex.escape:
                if self.raw_escapes:
                    out.append(ch)
                after = self.peek()
                if after == _EOF:
                    continue  # a lone escape at the end of the word is dropped
                if after in ('"', "$", self.lex.escape):
                    ch = self.next()
            out.append(ch)

    def get_env(self, name: str) -> tuple[str, bool]:
        if name in self.env:
            self.matched.add(name)
            return self.env[name], True
        self.unmatched.add(name)
        return "", False

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            if name == "":
                return "$"
            value, found = self.get_env(name)
            if not found and self.lex.skip_unset:
                return "$" + name
            return value
        self.next()
        first = self.peek()
        if first == _EOF:
            raise _Inner("syntax error: missing '}'")
        if first in ("{", "}", ":"):
            raise _Inner("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        if ch == _EOF:
            # BuildKit reports "unsupported modifier (\ufffd)" here; say what is wrong instead.
            raise _Inner("syntax error: missing '}'")
        chs = ch
        null_is_unset = False
        if ch == "}":
            value, found = self.get_env(name)
            if not found and self.lex.skip_unset:
                return "${" + name + "}"
            return value
        if ch == ":":
            null_is_unset = True
            ch = self.next()
            chs += ch
            if ch not in ("+", "-", "?", "#", "%"):
                raise _Inner(f"unsupported modifier ({chs}) in substitution")
        if ch in ("+", "-", "?", "#", "%"):
            pattern_like = ch in ("#", "%")
            if null_is_unset and pattern_like:
                raise _Inner(f"unsupported modifier ({chs}) in substitution")
            try:
                word, _ = self.stop_on("}", pattern_like)
            except _Inner:
                if self.peek() == _EOF:
                    raise _Inner("syntax error: missing '}'") from None
                raise
            value, found = self.get_env(name)
            if self.lex.skip_unset and not found:
                return "${" + name + chs + word + "}"
            unset_or_null = not found or (null_is_unset and value == "")
            if ch == "-":
                return word if unset_or_null else value
            if ch == "+":
                return "" if unset_or_null else word
            if ch == "?":
                if not found:
                    raise _Inner(f"{name}: {word or 'is not allowed to be unset'}")
                if null_is_unset and value == "":
                    raise _Inner(f"{name}: {word or 'is not allowed to be empty'}")
                return value
            greedy = False
            if word.startswith(ch):
                greedy = True
                word = word[1:]
            if ch == "%":
                return _trim_suffix(word, value, greedy)
            return _trim_prefix(word, value, greedy)
        if ch == "/":
            replace_all = self.peek() == "/"
            if replace_all:
                self.next()
            try:
                pattern, _ = self.stop_on("/", True)
            except _Inner:
                if self.peek() == _EOF:
                    raise _Inner("syntax error: missing '/' in ${}") from None
                raise
            try:
                replacement, _ = self.stop_on("}", True)
            except _Inner:
                if self.peek() == _EOF:
                    raise _Inner("syntax error: missing '}'") from None
                raise
            value, found = self.get_env(name)
            if self.lex.skip_unset and not found:
                return "${" + name + "/" + pattern + "/" + replacement + "}"
            rx = _pattern_regex(pattern, greedy=True, anchored=False)
            if replace_all:
                return rx.sub(lambda _m: replacement, value)
            return rx.sub(lambda _m: replacement, value, count=1)
        raise _Inner(f"unsupported modifier ({chs}) in substitution")

    def name(self) -> str:
        out: list[str] = []
        while self.peek() != _EOF:
            ch = self.peek()
            if not out and _is_digit(ch):
                while self.peek() != _EOF and _is_digit(self.peek()):
                    out.append(self.next())
                return "".join(out)
            if not out and ch in "@*#?-$!0":
                return self.next()
            if not (_is_letter(ch) or _is_digit(ch) or ch == "_"):
                break
            out.append(self.next())
        return "".join(out)


def _pattern_regex(pattern: str, *, greedy: bool, anchored: bool) -> re.Pattern[str]:
    """A ``${x#pat}`` glob as a regexp (BuildKit's convertShellPatternToRegex)."""
    out = ["^"] if anchored else []
    star = ".*" if greedy else ".*?"
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append(star)
        elif ch == "?":
            out.append(".")
        elif ch == "\\":
            nxt = pattern[i] if i < len(pattern) else ""
            if nxt in ("}", "/"):
                continue  # only there to get } or / into the pattern
            if nxt not in ("*", "?", "\\"):
                raise _Inner(
                    f"invalid pattern ({pattern}) in substitution: invalid escape '\\{nxt}'"
                )
            out.append(re.escape(nxt))
            i += 1
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    m = _pattern_regex(pattern, greedy=greedy, anchored=True).search(value)
    return value[m.end() :] if m else value


def _reverse_pattern(pattern: str) -> str:
    """Reverse a pattern keeping ``\\x`` escapes in front of their character."""
    tokens: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            tokens.append(pattern[i : i + 2])
            i += 2
        else:
            tokens.append(pattern[i])
            i += 1
    return "".join(reversed(tokens))


def _trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    # Regexps find leftmost matches: reverse both to find the shortest/longest suffix.
    return _trim_prefix(_reverse_pattern(pattern), value[::-1], greedy)[::-1]


def _go_quote(s: str) -> str:
    from dockyard.builder.parser import _go_quote as q

    return q(s)


# --------------------------------------------------------------------------------------------
# Instruction-level expansion


def expand_heredoc(content: str, env: Mapping[str, str]) -> str:
    """Expand a COPY/ADD heredoc body whose delimiter was unquoted (quotes stay as written)."""
    return Lexer("\\", skip_quotes=True).process_word(content, env)


_I = TypeVar("_I")


def expand_instruction(instr: _I, env: Mapping[str, str], escape: str = "\\") -> _I:
    """Return ``instr`` with its expandable fields expanded against ``env``.

    ``env`` is what the instruction sees (``scope.StageScope.lookup()``). Errors name the
    instruction's line.
    """
    from dockyard.builder import instructions as ins
    from dockyard.builder.mounts import parse_mount

    lex = Lexer(escape)

    def word(s: str) -> str:
        return lex.process_word(s, env)

    def opt(s: str | None) -> str | None:
        return None if s is None else word(s)

    try:
        if isinstance(instr, ins.Env):
            pairs = tuple((word(k), word(v)) for k, v in instr.pairs)
            return dataclasses.replace(instr, pairs=pairs)
        if isinstance(instr, ins.Label):
            pairs = tuple((word(k), word(v)) for k, v in instr.pairs)
            return dataclasses.replace(instr, pairs=pairs)
        if isinstance(instr, ins.Workdir):
            return dataclasses.replace(instr, path=word(instr.path))
        if isinstance(instr, ins.User):
            return dataclasses.replace(instr, user=word(instr.user))
        if isinstance(instr, ins.Stopsignal):
            return dataclasses.replace(instr, signal=word(instr.signal))
        if isinstance(instr, ins.Volume):
            vols = tuple(word(v) for v in instr.paths)
            if any(v.strip() == "" for v in vols):
                raise InvalidArgument("VOLUME specified can not be an empty string")
            return dataclasses.replace(instr, paths=vols)
        if isinstance(instr, ins.Expose):
            ports: list[str] = []
            for p in instr.ports:
                ports += lex.process_words(p, env)
            return dataclasses.replace(instr, ports=tuple(ports))
        if isinstance(instr, (ins.Copy, ins.Add)):
            return dataclasses.replace(
                instr,
                sources=tuple(word(s) for s in instr.sources),
                dest=word(instr.dest),
                chown=opt(instr.chown),
                chmod=opt(instr.chmod),
                checksum=opt(instr.checksum),
                exclude=tuple(word(e) for e in instr.exclude),
                # BuildKit strips the tabs of <<- bodies before expanding them
                heredocs=tuple(
                    dataclasses.replace(h, content=expand_heredoc(h.chomped, env), chomp=False)
                    if h.expand
                    else h
                    for h in instr.heredocs
                ),
            )
        if isinstance(instr, ins.Run):
            mounts = tuple(parse_mount(m.spec, word) for m in instr.mounts)
            return dataclasses.replace(instr, mounts=mounts)
        if isinstance(instr, ins.From):
            return dataclasses.replace(instr, image=word(instr.image), platform=opt(instr.platform))
        return instr
    except InvalidArgument as err:
        line = getattr(instr, "line", 0)
        raise InvalidArgument(f"dockerfile parse error on line {line}: {err}") from None
