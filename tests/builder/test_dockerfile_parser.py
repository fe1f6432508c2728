"""Parser tests: table-driven cases from the Dockerfile reference and BuildKit's behaviour, and a
comparison against the ``dockerfile`` package (BuildKit's own Go parser) on a corpus plus
randomly assembled Dockerfiles."""

from __future__ import annotations

import random

import dockerfile as oracle
import pytest

from dockyard.builder.parser import Heredoc, Node, chomp_heredoc, parse, split_words
from dockyard.errors import InvalidArgument


def nodes(text: str) -> list[Node]:
    return list(parse(text).nodes)


def shape(n: Node) -> tuple:
    return (n.keyword, n.flags, n.args, n.json, n.start_line, n.end_line)


# --- formats, comments, whitespace -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FROM busybox", [("from", (), ("busybox",), False, 1, 1)]),
        ("from busybox as Build", [("from", (), ("busybox", "as", "Build"), False, 1, 1)]),
        ("  \t RUN echo hi", [("run", (), ("echo hi",), False, 1, 1)]),
        (
            "# Comment\nRUN echo 'we are running some # of cool things'",
            [("run", (), ("echo 'we are running some # of cool things'",), False, 2, 2)],
        ),
        ("RUN echo hello \\\n# comment\nworld", [("run", (), ("echo hello world",), False, 1, 3)]),
        ("RUN echo hello \\\nworld", [("run", (), ("echo hello world",), False, 1, 2)]),
        (
            'RUN echo "\\\n     hello\\\n     world"',
            [("run", (), ('echo "     hello     world"',), False, 1, 3)],
        ),
        (
            "        # this is a comment-line\n    RUN echo hello\nRUN echo world",
            [("run", (), ("echo hello",), False, 2, 2), ("run", (), ("echo world",), False, 3, 3)],
        ),
        ("RUN a \\\n\n  b", [("run", (), ("a   b",), False, 1, 3)]),
        ("RUN a \\\n  # c1\n   # c2\n  b \\\n  c", [("run", (), ("a   b   c",), False, 1, 5)]),
        (
            "RUN a\\\\\nRUN b",
            [("run", (), ("a\\\\",), False, 1, 1), ("run", (), ("b",), False, 2, 2)],
        ),
        ("RUN a \\  \t\nb", [("run", (), ("a b",), False, 1, 2)]),
        ("RUN a \\", [("run", (), ("a",), False, 1, 1)]),
        ("\n\n\nFROM x\n\n", [("from", (), ("x",), False, 4, 4)]),
        (
            "FROM x\r\nRUN y\r\n",
            [("from", (), ("x",), False, 1, 1), ("run", (), ("y",), False, 2, 2)],
        ),
        ("\ufeffFROM x", [("from", (), ("x",), False, 1, 1)]),
        ('CMD ["a", "b"]', [("cmd", (), ("a", "b"), True, 1, 1)]),
        ("CMD [ 'a' ]", [("cmd", (), ("[ 'a' ]",), False, 1, 1)]),
        ('CMD ["a"] trailing', [("cmd", (), ("a",), True, 1, 1)]),
        ("CMD []", [("cmd", (), (), True, 1, 1)]),
        (
            'ENTRYPOINT ["/bin/bash", "-c", "echo hello"]',
            [("entrypoint", (), ("/bin/bash", "-c", "echo hello"), True, 1, 1)],
        ),
        (
            'RUN ["c:\\\\windows\\\\system32\\\\tasklist.exe"]',
            [("run", (), ("c:\\windows\\system32\\tasklist.exe",), True, 1, 1)],
        ),
        (
            'RUN ["c:\\windows\\system32\\tasklist.exe"]',
            [("run", (), ('["c:\\windows\\system32\\tasklist.exe"]',), False, 1, 1)],
        ),
        ("COPY a b /c/", [("copy", (), ("a", "b", "/c/"), False, 1, 1)]),
        ('COPY ["a b", "/c d"]', [("copy", (), ("a b", "/c d"), True, 1, 1)]),
        (
            "COPY --from=b --chown=1:2 a /c",
            [("copy", ("--from=b", "--chown=1:2"), ("a", "/c"), False, 1, 1)],
        ),
        ("COPY --from b a c", [("copy", ("--from",), ("b", "a", "c"), False, 1, 1)]),
        ("COPY -- --x y", [("copy", (), ("--x", "y"), False, 1, 1)]),
        ("COPY --chown='a b' x y", [("copy", ("--chown=a b",), ("x", "y"), False, 1, 1)]),
        ('ENV a=b c="d e"', [("env", (), ("a", "b", "c", '"d e"'), False, 1, 1)]),
        ("ENV MY_DOG=Rex\\ The\\ Dog", [("env", (), ("MY_DOG", "Rex\\ The\\ Dog"), False, 1, 1)]),
        ("ENV ONE TWO= THREE=world", [("env", (), ("ONE", "TWO= THREE=world"), False, 1, 1)]),
        (
            'LABEL "com.example.vendor"="ACME Incorporated"',
            [("label", (), ('"com.example.vendor"', '"ACME Incorporated"'), False, 1, 1)],
        ),
        ("ARG a b=c 'd e'", [("arg", (), ("a", "b=c", "'d e'"), False, 1, 1)]),
        ("EXPOSE 80/tcp  443", [("expose", (), ("80/tcp", "443"), False, 1, 1)]),
        ("USER  a b ", [("user", (), ("a b",), False, 1, 1)]),
        ("VOLUME /a /b", [("volume", (), ("/a", "/b"), False, 1, 1)]),
        ('VOLUME ["/data"]', [("volume", (), ("/data",), True, 1, 1)]),
        (
            "HEALTHCHECK --interval=5m CMD curl -f http://localhost/ || exit 1",
            [
                (
                    "healthcheck",
                    ("--interval=5m",),
                    ("CMD", "curl -f http://localhost/ || exit 1"),
                    False,
                    1,
                    1,
                )
            ],
        ),
        ('HEALTHCHECK CMD ["a", "b"]', [("healthcheck", (), ("CMD", "a", "b"), True, 1, 1)]),
        ("HEALTHCHECK NONE", [("healthcheck", (), ("NONE",), False, 1, 1)]),
        ("FOO bar", [("foo", (), (), False, 1, 1)]),
    ],
)
def test_parse_table(text: str, expected: list[tuple]) -> None:
    assert [shape(n) for n in nodes(text)] == expected


def test_onbuild_has_subnode() -> None:
    (n,) = nodes('ONBUILD RUN ["a", "b"]')
    assert n.keyword == "onbuild" and n.args == ()
    assert n.sub is not None
    assert (n.sub.keyword, n.sub.args, n.sub.json) == ("run", ("a", "b"), True)
    (n,) = nodes("onbuild copy --from=x a b")
    assert n.sub is not None and n.sub.flags == ("--from=x",) and n.sub.original_keyword == "copy"


# --- directives ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "#directive=value",
        "# directive =value",
        "#\tdirective= value",
        "# directive = value",
        "#\t  dIrEcTiVe=value",
    ],
)
def test_directive_whitespace_forms(header: str) -> None:
    r = parse(
        header.replace("directive", "escape").replace("dIrEcTiVe", "eScApE").replace("value", "`")
        + "\nFROM x\nRUN a `\nb"
    )
    assert r.escape == "`"
    assert r.nodes[1].args == ("a b",)


def test_escape_backtick_windows_example() -> None:
    text = "# escape=`\n\nFROM microsoft/nanoserver\nCOPY testfile.txt c:\\\nRUN dir c:\\\n"
    r = parse(text)
    assert [n.original for n in r.nodes] == [
        "FROM microsoft/nanoserver",
        "COPY testfile.txt c:\\",
        "RUN dir c:\\",
    ]


def test_default_escape_joins_windows_example() -> None:
    text = "FROM microsoft/nanoserver\nCOPY testfile.txt c:\\\\\nRUN dir c:\\\n"
    r = parse(text)
    assert [n.original for n in r.nodes] == [
        "FROM microsoft/nanoserver",
        "COPY testfile.txt c:\\\\",
        "RUN dir c:",
    ]


def test_directives_recorded() -> None:
    r = parse("# syntax=docker/dockerfile:1\n# check=skip=JSONArgsRecommended;error=true\nFROM x")
    assert r.directive("syntax") == "docker/dockerfile:1"
    assert r.directive("check") == "skip=JSONArgsRecommended;error=true"
    assert r.directives[0].line == 1 and r.directives[1].line == 2


@pytest.mark.parametrize(
    ("text", "escape"),
    [
        ("FROM x\n# escape=`\nRUN a", "\\"),  # after an instruction: a comment
        ("# About my dockerfile\n# escape=`\nFROM x", "\\"),  # after a comment
        ("# unknowndirective=value\n# escape=`\nFROM x", "\\"),
        ("\n# escape=`\nFROM x", "\\"),  # after an empty line
        ("# escape=`\nFROM x", "`"),
        ("# syntax=a\n# escape=`\nFROM x", "`"),
    ],
)
def test_directives_only_at_top(text: str, escape: str) -> None:
    assert parse(text).escape == escape


def test_directive_continuation_is_not_a_directive() -> None:
    r = parse("# escape \\\n=`\nFROM x")
    assert r.escape == "\\" and r.directives == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "# escape=`\n# escape=\\\nFROM x",
            "dockerfile parse error on line 2: only one escape parser directive can be used",
        ),
        ("# syntax=a\n# syntax=b\nFROM x", "only one syntax parser directive can be used"),
        (
            "# check=skip=all\n# CHECK=error=true\nFROM x",
            "only one check parser directive can be used",
        ),
        ("# escape=x\nFROM x", "invalid escape token 'x' does not match ` or \\"),
    ],
)
def test_directive_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("\\", "\\\\").replace("`", "`")):
        parse(text)


# --- heredocs --------------------------------------------------------------------------------


def test_heredoc_simple_and_lines() -> None:
    (f, r, c) = nodes("FROM x\nRUN <<EOF\napt-get update\napt-get install -y curl\nEOF\nCMD x")
    assert (r.start_line, r.end_line) == (2, 5)
    assert r.heredocs == (Heredoc("EOF", "apt-get update\napt-get install -y curl\n"),)
    assert r.args == ("<<EOF",)
    assert c.start_line == 6


def test_heredoc_multiple_on_one_line() -> None:
    (r,) = nodes(
        "RUN <<FILE1 cat > file1 && <<FILE2 cat > file2\nI am\nfirst\nFILE1\nI am\nsecond\nFILE2\n"
    )
    assert [(h.name, h.content) for h in r.heredocs] == [
        ("FILE1", "I am\nfirst\n"),
        ("FILE2", "I am\nsecond\n"),
    ]
    assert r.end_line == 7


def test_heredoc_chomp_and_quotes() -> None:
    text = 'COPY <<-"EOT" /script.sh\n\t  echo "hello ${FOO}"\n\t\tEOT\nRUN <<-EOT\n\tx\n\tEOT\n'
    c, r = nodes(text)
    (h,) = c.heredocs
    assert h.name == "EOT" and h.chomp and not h.expand
    assert h.content == '\t  echo "hello ${FOO}"\n'
    assert h.chomped == '  echo "hello ${FOO}"\n'
    assert r.heredocs[0].expand and r.heredocs[0].chomped == "x\n"


@pytest.mark.parametrize(
    ("word", "expand"),
    [
        ("<<EOF", True),
        ('<<"EOF"', False),
        ("<<'EOF'", False),
        ('<<E"O"F', False),
        ("<<\\EOF", True),
    ],
)
def test_heredoc_quoting_disables_expansion(word: str, expand: bool) -> None:
    (r,) = nodes(f"RUN cat {word}\nbody $x\nEOF\n")
    assert r.heredocs[0].name == "EOF"
    assert r.heredocs[0].expand is expand


def test_heredoc_fd_and_flags_and_onbuild() -> None:
    (r,) = nodes("RUN --mount=type=cache,target=/c 3<<E cat\nx\nE")
    assert r.flags == ("--mount=type=cache,target=/c",) and r.heredocs == (Heredoc("E", "x\n", 3),)
    (o,) = nodes("ONBUILD RUN <<EOF\nhi\nEOF")
    assert o.heredocs == (Heredoc("EOF", "hi\n"),) and o.end_line == 3
    assert o.sub is not None and o.sub.heredocs == o.heredocs


def test_heredoc_not_in_json_or_other_instructions() -> None:
    (r,) = nodes('RUN ["<<EOF"]')
    assert r.heredocs == ()
    f, c = nodes("FROM x\nCMD <<EOF")
    assert c.heredocs == ()


def test_heredoc_body_is_raw() -> None:
    (r,) = nodes("RUN <<EOF\n# not a comment \\\n\n  indented\nEOF")
    assert r.heredocs[0].content == "# not a comment \\\n\n  indented\n"


def test_heredoc_crlf() -> None:
    (r,) = nodes("RUN <<EOF\r\na\r\nEOF\r\n")
    assert r.heredocs[0].content == "a\r\n"


def test_unterminated_heredoc() -> None:
    with pytest.raises(
        InvalidArgument, match="dockerfile parse error on line 2: unterminated heredoc"
    ):
        parse("FROM x\nRUN <<EOF\nabc\n")


def test_chomp_heredoc() -> None:
    assert chomp_heredoc("\t\ta\n \tb\n\tc") == "a\n \tb\nc"


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "file with no instructions"),
        ("# just a comment\n\n", "file with no instructions"),
        (
            "FROM x\nENV a=b c",
            'dockerfile parse error on line 2: Syntax error - can\'t find = in "c". Must be of the form: name=value',
        ),
        ("FROM x\nENV x", "line 2: ENV must have two arguments"),
        ("FROM x\nLABEL x", "LABEL must have two arguments"),
        (
            'FROM x\n\nRUN ["a", 1]',
            "line 3: when using JSON array syntax, arrays must be comprised of strings only",
        ),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        parse(text)
    assert message in str(exc.value)


def test_empty_continuation_warning() -> None:
    r = parse("RUN a \\\n\nb")
    assert r.warnings and "Empty continuation line" in r.warnings[0]


@pytest.mark.parametrize(
    ("rest", "words"),
    [
        ("a b  c", ["a", "b", "c"]),
        ('a="b c" d', ['a="b c"', "d"]),
        ("a='b \\' c", ["a='b \\'", "c"]),
        ('x="a\\" b"', ['x="a\\" b"']),
        ("a\\ b c", ["a\\ b", "c"]),
        ('""', ['""']),
        ("a \\", ["a"]),
    ],
)
def test_split_words(rest: str, words: list[str]) -> None:
    assert split_words(rest, "\\") == words


# --- comparison with BuildKit's parser ---------------------------------------------------------


def oracle_shape(c: oracle.Command) -> tuple:
    cmd = (c.cmd or "").lower()
    if cmd == "onbuild" and c.sub_cmd:
        sub = c.sub_cmd.lower()
        value = c.value if sub in _KNOWN and sub != "onbuild" else ()
        return ("onbuild", sub, value, c.json, c.start_line, c.end_line, ())
    docs = tuple((h.name, h.content) for h in c.heredocs)
    value = c.value if cmd in _KNOWN else ()
    return (cmd, c.flags, value, c.json, c.start_line, c.end_line, docs)


def our_shape(n: Node) -> tuple:
    if n.keyword == "onbuild" and n.sub is not None:
        return ("onbuild", n.sub.keyword, n.sub.args, n.sub.json, n.start_line, n.end_line, ())
    docs = tuple((h.name, h.content) for h in n.heredocs)
    return (n.keyword, n.flags, n.args, n.json, n.start_line, n.end_line, docs)


_KNOWN = set(oracle.all_cmds())


def compare(text: str) -> None:
    try:
        expected = [oracle_shape(c) for c in oracle.parse_string(text)]
    except oracle.GoParseError:
        with pytest.raises(InvalidArgument):
            parse(text)
        return
    assert [our_shape(n) for n in parse(text).nodes] == expected, text


CORPUS = [
    "FROM busybox\nRUN echo hi",
    "ARG V=1\nFROM busybox:${V} AS b\nCOPY --from=b --chmod=755 a b /c/\n",
    "FROM x\nRUN set -ex; \\\n    apt-get update; \\\n    # comment inside\n    apt-get install -y a \\\n       b c\n",
    "FROM x\nRUN <<EOF bash\n  set -ex\n  apt-get update\nEOF\n",
    "FROM x\nRUN <<FILE1 cat > file1 && <<FILE2 cat > file2\nI am\nfirst\nFILE1\nI am\nsecond\nFILE2\n",
    'FROM alpine\nARG FOO=bar\nCOPY <<-"EOT" /script.sh\n  echo "hello ${FOO}"\nEOT\nENTRYPOINT ash /script.sh\n',
    "FROM x\nCOPY <<EOF greeting.txt\nhello world\nEOF\n",
    "# escape=`\nFROM x\nRUN a `\n  b\nCOPY c:\\ d\n",
    'FROM x\nENV MY_NAME="John Doe" MY_DOG=Rex\\ The\\ Dog \\\n    MY_CAT=fluffy\n',
    'FROM x\nLABEL multi.label1="value1" \\\n      multi.label2="value2" \\\n      other="value3"\n',
    "FROM x\nHEALTHCHECK --interval=5m --timeout=3s \\\n  CMD curl -f http://localhost/ || exit 1\n",
    'FROM x\nSHELL ["powershell", "-command"]\nRUN Write-Host hello\n',
    "FROM x\nONBUILD ADD . /app/src\nONBUILD RUN /usr/local/bin/python-build --dir /app/src\n",
    "FROM x\nRUN --mount=type=cache,target=/var/cache/apt,sharing=locked \\\n  --mount=type=cache,target=/var/lib/apt,sharing=locked \\\n  apt-get update\n",
    'FROM x\nEXPOSE 80/tcp\nEXPOSE 80/udp\nVOLUME ["/var/www", "/var/log/apache2"]\nSTOPSIGNAL SIGKILL\nUSER 1000:1000\nWORKDIR /a\n',
    "FROM x\nRUN a \\\n\n\n  b\n",
    "FROM x\n  \t# indented comment\n\tRUN  x  \n",
    "FROM x\nRUN ['bad json']\nCMD [\"ok\",\n",
    "FROM x\nADD --keep-git-dir=true https://github.com/moby/buildkit.git#v0.10.1 /buildkit\n",
    'FROM x\nCOPY ["a b", "c"]\nADD ["x","y"]\n',
    'FROM x\nRUN echo $HOME \\\n  && echo "a\\\\"\n',
    "FROM x\nRUN cat <<'EOF' | sh\necho $HOME\nEOF\n",
    "FROM x\nRUN <<-EOT\n\techo tabbed\n\tEOT\n",
    "FROM x\nMAINTAINER SvenDowideit@home.org.au\n",
    "FROM x\nARG a b=c 'd e' f=\"g h\"\n",
    "FROM x\nENTRYPOINT []\nCMD []\n",
    "FROM x\nRUN\nCMD\nEXPOSE\n",
    "FROM x\nUNKNOWN a b c\n",
    "FROM x\nENV a=b c",
    "FROM x\nRUN <<EOF\nunterminated",
    "",
    "\ufeff# syntax=docker/dockerfile:1\nFROM x\n",
    "FROM x\r\nRUN a \\\r\n  b\r\n",
]


@pytest.mark.parametrize("text", CORPUS)
def test_matches_buildkit_parser(text: str) -> None:
    compare(text)


FRAGMENTS = [
    "FROM busybox",
    "FROM a AS b",
    "FROM --platform=$P img",
    "RUN echo a",
    "RUN echo a \\\n  b",
    "RUN a \\\n# c\n  b",
    "RUN a \\\n\n b",
    'RUN ["a", "b c"]',
    "RUN <<EOF\nx\nEOF",
    "RUN <<-EOF\n\tx\n\tEOF",
    'RUN <<"EOF" cat\n$x\nEOF',
    "RUN <<A cat && <<B cat\n1\nA\n2\nB",
    "COPY a b",
    "COPY --from=x a /b",
    "COPY <<EOF /x\nhi\nEOF",
    'COPY ["a", "b"]',
    "ADD x y",
    "ENV a=b",
    'ENV a="b c" d=e',
    "ENV a b c",
    "LABEL a=b",
    "ARG x",
    "ARG x=y z",
    "EXPOSE 1 2",
    "USER u",
    "WORKDIR /w",
    "VOLUME /v",
    "CMD x",
    'CMD ["x"]',
    "ENTRYPOINT x",
    'SHELL ["sh"]',
    "HEALTHCHECK NONE",
    "HEALTHCHECK --retries=2 CMD x",
    "ONBUILD RUN x",
    "STOPSIGNAL 9",
    "# comment",
    "",
    "   ",
    "\t# indented",
    "MAINTAINER me",
    "RUN a\\\\",
    "RUN x \\  ",
    "RUN echo '# not comment'",
    "COPY --chown=a:b --link x y",
]


@pytest.mark.parametrize("seed", range(60))
def test_random_dockerfiles_match_buildkit(seed: int) -> None:
    rng = random.Random(seed)
    lines = [rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 12))]
    compare("\n".join(lines) + rng.choice(["", "\n", "\r\n"]))


MUTATIONS = [
    *" \\\"'\n#<-=[]`\tEOF${}:,\r",
    "<<EOF",
    "\nEOF\n",
    "RUN ",
    "--x=",
    "ONBUILD ",
    "\\\n",
    "<<-EOF",
]


@pytest.mark.parametrize("seed", range(300))
def test_mutated_corpus_matches_buildkit(seed: int) -> None:
    rng = random.Random(seed)
    text = rng.choice(CORPUS)
    for _ in range(rng.randint(1, 6)):
        pos = rng.randint(0, len(text))
        if rng.random() < 0.3:
            text = text[:pos] + text[pos + 1 :]
        else:
            text = text[:pos] + rng.choice(MUTATIONS) + text[pos:]
    if "check" in text.lower():
        return  # the oracle's BuildKit predates the check directive
    compare(text)
