"""Variable expansion: BuildKit's own lexer tables (envVarTest, wordsTest, TestProcessWithMatches),
the reference's examples, and which instructions expand what."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.builder.expand import Lexer, LexError, expand_heredoc, expand_instruction
from dockyard.builder.instructions import parse_dockerfile
from dockyard.errors import InvalidArgument

DATA = Path(__file__).parent / "data"
ENV = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}


def _env_var_cases() -> list[tuple[str, str]]:
    out = []
    for line in (DATA / "envVarTest").read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        platform, source, expected = line.split("|")
        if platform.strip() in ("A", "U"):
            out.append((source.strip(), expected.strip()))
    return out


@pytest.mark.parametrize(("source", "expected"), _env_var_cases())
def test_buildkit_env_var_table(source: str, expected: str) -> None:
    lex = Lexer("\\")
    if expected == "error":
        with pytest.raises(LexError):
            lex.process_word(source, ENV)
    else:
        assert lex.process_word(source, ENV) == expected


def _words_cases() -> list[tuple[str, dict[str, str], list[str]]]:
    out = []
    env: dict[str, str] = {}
    for line in (DATA / "wordsTest").read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            continue
        if line.startswith("ENV "):
            k, v = line[3:].lstrip(" ").split("=", 1)
            env[k] = v
            continue
        source, expected = line.split("|")
        out.append((source.strip(), dict(env), expected.lstrip(" ").split(",")))
    return out


@pytest.mark.parametrize(("source", "env", "expected"), _words_cases())
def test_buildkit_words_table(source: str, env: dict[str, str], expected: list[str]) -> None:
    lex = Lexer("\\")
    if expected == ["error"]:
        with pytest.raises(LexError):
            lex.process_words(source, env)
    else:
        assert lex.process_words(source, env) == expected


# TestProcessWithMatches from BuildKit's lex_test.go
MATCH_CASES = [
    ("x", {"DUMMY": "dummy"}, "x"),
    ("x ${UNUSED}", {"DUMMY": "dummy"}, "x "),
    ("x ${FOO}", {"FOO": "y"}, "x y"),
    ("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", {"FOO": "xxx", "BAR": ""}, "xxx  ccc"),
    ("${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", {"FOO": "xxx", "BAR": ""}, "xxx bbb ccc"),
    ("${FOO:-}", {"FOO": "xxx", "BAR": ""}, "xxx"),
    ("${FOO:-}", {}, ""),
    ("${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", {"FOO": "xxx", "BAR": ""}, "aaa bbb "),
    ("${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", {"FOO": "xxx", "BAR": ""}, "aaa  "),
    ("${FOO?aaa}", {"FOO": "xxx", "BAR": ""}, "xxx"),
    ("${BAR?bbb}", {"FOO": "xxx", "BAR": ""}, ""),
    ("${BAZ?ccc}", {"FOO": "xxx", "BAR": ""}, None),
    ("${FOO:?aaa}", {"FOO": "xxx", "BAR": ""}, "xxx"),
    ("${BAR:?bbb}", {"FOO": "xxx", "BAR": ""}, None),
    ("${BAZ:?ccc}", {"FOO": "xxx", "BAR": ""}, None),
    ("${BAZ:?}", {"FOO": "xxx", "BAR": ""}, None),
    ("${FOO=aaa}", {"FOO": "xxx", "BAR": ""}, None),
    ("${FOO=:aaa}", {"FOO": "xxx", "BAR": ""}, None),
    ("${FOO=}", {}, None),
    ("${FOO#()[]{\\}^$.\\*\\?|\\\\}", {"FOO": "()[]{}^$.*?|\\x"}, "x"),
    ("${FOO%%\\**}", {"FOO": "xx**"}, "xx"),
    ("${FOO#*x*y}", {"FOO": "xxyy"}, "y"),
    ("${FOO#*}", {"FOO": "xxyy"}, "xxyy"),
    ("${FOO#$BAR}", {"FOO": "xxyy", "BAR": "x"}, "xyy"),
    ("${FOO#$BAR}", {"FOO": "xxyy", "BAR": ""}, "xxyy"),
    ("${FOO#}", {"FOO": "xxyy"}, "xxyy"),
    ("${FOO##*x}", {"FOO": "xxyy"}, "yy"),
    ("${FOO##}", {"FOO": "xxyy"}, "xxyy"),
    ("${FOO#?\\?}", {"FOO": "???y"}, "?y"),
    ("${ABC:-.}${FOO%x}${ABC:-.}", {"FOO": "xxyy"}, ".xxyy."),
    ("${FOO%%\\**\\*}", {"FOO": "a***yy*"}, "a"),
    ("${FOO%}", {"FOO": "xxyy"}, "xxyy"),
    ("${FOO%%$BAR}", {"FOO": "xxyy", "BAR": ""}, "xxyy"),
    ("${FOO:#}", {}, None),
    ("${FOO:##}", {}, None),
    ("${FOO:%}", {}, None),
    ("${FOO:%%}", {}, None),
    (
        "${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
        {"FOO": "/foo*/*/*.txt", "NEEDLE": "\\*/"},
        "/foo.*/*.txt - /foo..*.txt",
    ),
    (
        "${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
        {"FOO": "/tmp/tmp/bar.txt", "NEEDLE": "/tmp"},
        "/tmp/bar.txt - /bar.txt",
    ),
    (
        "${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
        {"FOO": "/a/foo/b/c.txt", "NEEDLE": "/?/", "REPLACEMENT": "/"},
        "/foo/b/c.txt - /foo/c.txt",
    ),
    (
        "${FOO/$NEEDLE/$REPLACEMENT}",
        {"FOO": "http://google.de", "NEEDLE": "http://", "REPLACEMENT": "https://"},
        "https://google.de",
    ),
    ("${FOO//\\//\\/}", {"FOO": "/tmp/foo.txt"}, "\\/tmp\\/foo.txt"),
    ("${FOO/$BAR/ww}", {"FOO": "xxyy", "BAR": ""}, "wwxxyy"),
    ("${FOO//ww}", {"FOO": "xxyy"}, None),
    ("${FOO//}", {"FOO": "xxyy"}, None),
    ("${FOO///}", {"FOO": "xxyy"}, "xxyy"),
    ("${FOO///}", {}, ""),
]


@pytest.mark.parametrize(("source", "env", "expected"), MATCH_CASES)
def test_buildkit_process_with_matches(
    source: str, env: dict[str, str], expected: str | None
) -> None:
    lex = Lexer("\\")
    if expected is None:
        with pytest.raises(LexError):
            lex.process_word(source, env)
    else:
        assert lex.process_word(source, env) == expected


def test_matched_and_unmatched_names() -> None:
    word, matched, unmatched = Lexer().process_word_with_matches(
        "${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", {"FOO": "xxx", "BAR": ""}
    )
    assert word == "xxx  ccc"
    assert matched == {"FOO", "BAR"} and unmatched == {"BAZ"}


def test_platform_release_name() -> None:
    release = (
        "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz"
    )
    env = {"VERSION": "v1.2.3", "TARGETOS": "linux", "TARGETARCH": "arm", "TARGETVARIANT": "v7"}
    assert Lexer().process_word(release, env) == "something-v1.2.3.linux-arm-v7.tar.gz"
    env = {"VERSION": "v1.2.3", "TARGETOS": "linux", "TARGETARCH": "arm64"}
    assert Lexer().process_word(release, env) == "something-v1.2.3.linux-arm64.tar.gz"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("${str#f*b}", "arbaz"),
        ("${str##f*b}", "az"),
        ("${str%b*}", "foobar"),
        ("${str%%b*}", "foo"),
        ("${str/ba/fo}", "fooforbaz"),
        ("${str//ba/fo}", "fooforfoz"),
    ],
)
def test_reference_pattern_examples(source: str, expected: str) -> None:
    assert Lexer().process_word(source, {"str": "foobarbaz"}) == expected


def test_error_messages() -> None:
    with pytest.raises(
        LexError, match=r"^failed to process \"\$\{x\": syntax error: missing '\}'$"
    ):
        Lexer().process_word("${x", {})
    with pytest.raises(LexError, match="X: is not allowed to be unset"):
        Lexer().process_word("${X?}", {})
    with pytest.raises(LexError, match="X: need it"):
        Lexer().process_word("${X:?need it}", {"X": ""})
    with pytest.raises(LexError, match=r"unsupported modifier \(:#\) in substitution"):
        Lexer().process_word("${X:#a}", {})
    with pytest.raises(LexError, match="bad substitution"):
        Lexer().process_word("${:x}", {})
    with pytest.raises(LexError, match="invalid escape"):
        Lexer().process_word("${X#\\a}", {"X": "a"})
    assert isinstance(LexError("x"), InvalidArgument)


def test_backtick_escape() -> None:
    lex = Lexer("`")
    assert lex.process_word("c:\\dir `$x", {"x": "1"}) == "c:\\dir $x"
    assert lex.process_word('"a`"b"', {}) == 'a"b'


def test_skip_unset_and_raw_modes() -> None:
    lex = Lexer(skip_unset=True)
    assert lex.process_word("$A ${B} ${C:-x} $D", {"D": "d"}) == "$A ${B} ${C:-x} d"
    assert Lexer(raw_quotes=True).process_word("'a' \"b\"", {}) == "'a' \"b\""
    assert Lexer(raw_escapes=True).process_word("a\\ b", {}) == "a\\ b"


def test_heredoc_body_expansion_keeps_quotes() -> None:
    assert expand_heredoc('echo "hello ${FOO}"\n', {"FOO": "bar"}) == 'echo "hello bar"\n'
    assert expand_heredoc("it's $X and \\$Y\n", {"X": "x", "Y": "y"}) == "it's x and $Y\n"


# --- instruction-level expansion -------------------------------------------------------------


def instr(text: str):
    return parse_dockerfile("FROM scratch\n" + text).instructions[1]


def test_reference_environment_replacement_example() -> None:
    env = {"FOO": "/bar"}
    assert expand_instruction(instr("WORKDIR ${FOO}"), env).path == "/bar"
    add = expand_instruction(instr("ADD . $FOO"), env)
    assert add.sources == (".",) and add.dest == "/bar"
    cp = expand_instruction(instr("COPY \\$FOO /quux"), env)
    assert cp.sources == ("$FOO",) and cp.dest == "/quux"


def test_env_same_values_throughout_instruction() -> None:
    # ENV abc=hello / ENV abc=bye def=$abc / ENV ghi=$abc
    e = expand_instruction(instr("ENV abc=bye def=$abc"), {"abc": "hello"})
    assert e.pairs == (("abc", "bye"), ("def", "hello"))


def test_env_label_quotes_and_escapes() -> None:
    e = expand_instruction(instr('ENV MY_NAME="John Doe" MY_DOG=Rex\\ The\\ Dog MY_CAT=fluffy'), {})
    assert e.pairs == (("MY_NAME", "John Doe"), ("MY_DOG", "Rex The Dog"), ("MY_CAT", "fluffy"))
    lab = expand_instruction(
        instr("LABEL example=\"foo-$ENV_VAR\" other='foo-$ENV_VAR'"), {"ENV_VAR": "x"}
    )
    assert lab.pairs == (("example", "foo-x"), ("other", "foo-$ENV_VAR"))
    lab = expand_instruction(
        instr(
            'LABEL description="This text illustrates \\\nthat label-values can span multiple lines."'
        ),
        {},
    )
    assert lab.pairs == (
        ("description", "This text illustrates that label-values can span multiple lines."),
    )


def test_instructions_that_expand() -> None:
    env = {"A": "a", "P": "8080", "PS": "1 2/udp", "U": "1000", "S": "SIGTERM"}
    assert expand_instruction(instr("EXPOSE $P $PS"), env).ports == ("8080", "1", "2/udp")
    assert expand_instruction(instr("USER $U:$U"), env).user == "1000:1000"
    assert expand_instruction(instr("STOPSIGNAL $S"), env).signal == "SIGTERM"
    assert expand_instruction(instr("VOLUME /$A /b"), env).paths == ("/a", "/b")
    a = instr("ARG x=$A y")
    assert expand_instruction(a, env) == a  # applied by StageScope.declare
    c = expand_instruction(
        instr("COPY --chown=$U --chmod=$P --from=$A --exclude=*.$A $A /$A/"), env
    )
    assert (c.chown, c.chmod, c.exclude, c.sources, c.dest) == (
        "1000",
        "8080",
        ("*.a",),
        ("a",),
        "/a/",
    )
    assert c.from_ == "$A"  # never expanded: stages.plan rejects variables there
    r = expand_instruction(instr("RUN --mount=type=cache,target=/c/$A,id=$A echo $A"), env)
    assert r.cmd == ("echo $A",)  # left to the shell
    assert (r.mounts[0].target, r.mounts[0].id) == ("/c/a", "a")


def test_instructions_that_do_not_expand() -> None:
    env = {"A": "a"}
    for text in (
        "RUN echo $A",
        "CMD echo $A",
        'ENTRYPOINT ["$A"]',
        'SHELL ["$A"]',
        "HEALTHCHECK CMD $A",
        "ONBUILD COPY $A /b",
        "MAINTAINER $A",
    ):
        i = instr(text)
        assert expand_instruction(i, env) == i


def test_copy_heredoc_expansion_respects_quoting() -> None:
    c = expand_instruction(
        instr('COPY <<-EOT /script.sh\n\techo "hello ${FOO}"\nEOT'), {"FOO": "bar"}
    )
    # tabs stripped first, then expanded (a value's own tabs survive)
    assert c.heredocs[0].content == 'echo "hello bar"\n' and not c.heredocs[0].chomp
    c = expand_instruction(instr("COPY <<-EOT /x\n\t$V\nEOT"), {"V": "a\n\tb"})
    assert c.heredocs[0].content == "a\n\tb\n"
    c = expand_instruction(
        instr('COPY <<-"EOT" /script.sh\n  echo "hello ${FOO}"\nEOT'), {"FOO": "bar"}
    )
    assert c.heredocs[0].content == '  echo "hello ${FOO}"\n'


def test_expansion_errors_name_the_line() -> None:
    with pytest.raises(
        InvalidArgument, match=r"^dockerfile parse error on line 2: failed to process"
    ):
        expand_instruction(instr("WORKDIR ${A"), {})
    with pytest.raises(InvalidArgument, match="VOLUME specified can not be an empty string"):
        expand_instruction(instr("VOLUME $EMPTY"), {})
    with pytest.raises(InvalidArgument, match="line 2: unsupported mount type"):
        expand_instruction(instr("RUN --mount=type=$T,target=/x true"), {"T": "nfs"})


def test_copy_json_form_still_expands_and_quotes_matter() -> None:
    c = expand_instruction(instr('COPY ["$A b", "/x"]'), {"A": "a"})
    assert c.sources == ("a b",)
    with pytest.raises(InvalidArgument, match="single-quote"):
        expand_instruction(instr('COPY ["it\'s", "/x"]'), {})


ALPHABET = "abcXYZ019 _-./:=@#%+,\t!?*[]{}~^&|;<>()`é字"


@pytest.mark.parametrize("seed", range(40))
def test_quoting_properties(seed: int) -> None:
    import random

    rng = random.Random(seed)
    s = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 20)))
    lex = Lexer("\\")
    # single quotes keep everything literally
    assert lex.process_word("'" + s + "'", {}) == s
    # every character escaped is itself
    assert lex.process_word("".join("\\" + c for c in s), {}) == s
    # double quotes keep text without $, " and \
    assert lex.process_word('"' + s + '"', {}) == s
    # a variable's value is inserted verbatim, never re-scanned
    value = s + "$X'\"\\"
    assert lex.process_word("${V}", {"V": value}) == value
    assert lex.process_word('"$V"', {"V": value}) == value
    # unquoted, a value is split on blanks by process_words
    assert lex.process_words("$V", {"V": s}) == s.split()
    words = [
        "".join(rng.choice("abc/._-") for _ in range(rng.randint(1, 5)))
        for _ in range(rng.randint(1, 5))
    ]
    assert lex.process_words("  ".join(words), {}) == words
