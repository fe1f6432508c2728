""".dockerignore reading and matching (moby/patternmatcher's and Go's filepath.Match test tables),
the Dockerfile-specific ignore file, and walking a real context directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dockyard.builder.dockerignore import (
    PatternMatcher,
    compile_pattern,
    find_ignore_file,
    go_clean,
    keep_build_files,
    load_patterns,
    read_patterns,
    walk_context,
)
from dockyard.errors import InvalidArgument


def test_read_patterns_like_ignorefile_readall() -> None:
    content = (
        "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! "
    )
    assert read_patterns(content) == [
        "test1",
        "test2",
        "a/file/here",
        "lastfile",
        "!inverted/abs/path",
        "!",
        "!",
    ]


def test_read_patterns_cleaning() -> None:
    text = "\ufeff./a\r\n  b/../c/  \n  # not a comment because of leading blank\nd//e/./f\n/\n*.md\n!README.md\n"
    assert read_patterns(text) == [
        "a",
        "c",
        "# not a comment because of leading blank",
        "d/e/f",
        "/",
        "*.md",
        "!README.md",
    ]


@pytest.mark.parametrize(
    ("path", "clean"),
    [
        ("", "."),
        ("./a", "a"),
        ("a/../..", ".."),
        ("/../a", "/a"),
        ("a//b/", "a/b"),
        ("//a", "/a"),
        (".", "."),
    ],
)
def test_go_clean(path: str, clean: str) -> None:
    assert go_clean(path) == clean


EXACT, INEXACT, FAIL = "exact", "inexact", "fail"

# moby/patternmatcher TestMatches
MATCHES = [
    ("**", "file", EXACT),
    ("**", "file/", EXACT),
    ("**/", "file", EXACT),
    ("**/", "file/", EXACT),
    ("**", "/", EXACT),
    ("**/", "/", EXACT),
    ("**", "dir/file", EXACT),
    ("**/", "dir/file", EXACT),
    ("**", "dir/file/", EXACT),
    ("**/", "dir/file/", EXACT),
    ("**/**", "dir/file", EXACT),
    ("**/**", "dir/file/", EXACT),
    ("dir/**", "dir/file", EXACT),
    ("dir/**", "dir/file/", EXACT),
    ("dir/**", "dir/dir2/file", EXACT),
    ("dir/**", "dir/dir2/file/", EXACT),
    ("**/dir", "dir", EXACT),
    ("**/dir", "dir/file", INEXACT),
    ("**/dir2/*", "dir/dir2/file", EXACT),
    ("**/dir2/*", "dir/dir2/file/", INEXACT),
    ("**/dir2/**", "dir/dir2/dir3/file", EXACT),
    ("**/dir2/**", "dir/dir2/dir3/file/", EXACT),
    ("**file", "file", EXACT),
    ("**file", "dir/file", EXACT),
    ("**/file", "dir/file", EXACT),
    ("**file", "dir/dir/file", EXACT),
    ("**/file", "dir/dir/file", EXACT),
    ("**/file*", "dir/dir/file", EXACT),
    ("**/file*", "dir/dir/file.txt", EXACT),
    ("**/file*txt", "dir/dir/file.txt", EXACT),
    ("**/file*.txt", "dir/dir/file.txt", EXACT),
    ("**/file*.txt*", "dir/dir/file.txt", EXACT),
    ("**/**/*.txt", "dir/dir/file.txt", EXACT),
    ("**/**/*.txt2", "dir/dir/file.txt", FAIL),
    ("**/*.txt", "file.txt", EXACT),
    ("**/**/*.txt", "file.txt", EXACT),
    ("a**/*.txt", "a/file.txt", EXACT),
    ("a**/*.txt", "a/dir/file.txt", EXACT),
    ("a**/*.txt", "a/dir/dir/file.txt", EXACT),
    ("a/*.txt", "a/dir/file.txt", FAIL),
    ("a/*.txt", "a/file.txt", EXACT),
    ("a/*.txt**", "a/file.txt", EXACT),
    ("a[b-d]e", "ae", FAIL),
    ("a[b-d]e", "ace", EXACT),
    ("a[b-d]e", "aae", FAIL),
    ("a[^b-d]e", "aze", EXACT),
    (".*", ".foo", EXACT),
    (".*", "foo", FAIL),
    ("abc.def", "abcdef", FAIL),
    ("abc.def", "abc.def", EXACT),
    ("abc.def", "abcZdef", FAIL),
    ("abc?def", "abcZdef", EXACT),
    ("abc?def", "abcdef", FAIL),
    ("**/foo/bar", "foo/bar", EXACT),
    ("**/foo/bar", "dir/foo/bar", EXACT),
    ("**/foo/bar", "dir/dir2/foo/bar", EXACT),
    ("abc/**", "abc", FAIL),
    ("abc/**", "abc/def", EXACT),
    ("abc/**", "abc/def/ghi", EXACT),
    ("**/.foo", ".foo", EXACT),
    ("**/.foo", "bar.foo", FAIL),
    ("a(b)c/def", "a(b)c/def", EXACT),
    ("a(b)c/def", "a(b)c/xyz", FAIL),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", EXACT),
    (
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        EXACT,
    ),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", EXACT),
    ("a\\\\", "a\\", EXACT),
    ("a\\*b", "a*b", EXACT),
]


@pytest.mark.parametrize(("pattern", "text", "kind"), MATCHES)
def test_moby_matches_exact(pattern: str, text: str, kind: str) -> None:
    # MatchesExact: the pattern alone, no parent directories
    assert compile_pattern(go_clean(pattern)).match(text) is (kind == EXACT)


@pytest.mark.parametrize(("pattern", "text", "kind"), MATCHES)
def test_moby_matches_or_parent_matches(pattern: str, text: str, kind: str) -> None:
    assert PatternMatcher([pattern]).matches(text) is (kind != FAIL)


@pytest.mark.parametrize(
    ("patterns", "text", "excluded"),
    [
        (["**", "!util/docker/web"], "util/docker/web/foo", False),
        (["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", True),
        (
            ["**", "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"],
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            False,
        ),
        (["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", False),
        (["*.go"], "fileutils.go", True),
        (["*"], "fileutils.go", True),
        (["!fileutils.go", "*.go"], "fileutils.go", True),
        (["docs", "!docs/README.md"], "docs/README.md", False),
        (["docs/", "!docs/README.md"], "docs/README.md", False),
        (["docs/*", "!docs/README.md"], "docs/README.md", False),
        (["*.go", "!fileutils.go"], "fileutils.go", False),
        ([], "/any/path/there", False),
        (["*.go"], ".", False),
        (["*"], "./", False),
        (["docs", "config", ""], "config/x", True),
        (["docs", "  !docs/README.md  "], "docs/README.md", False),
    ],
)
def test_moby_multi_patterns(patterns: list[str], text: str, excluded: bool) -> None:
    assert PatternMatcher(patterns).matches(text) is excluded


# Go's filepath.Match table as moby/patternmatcher runs it (TestMatch)
GO_MATCH = [
    ("abc", "abc", True),
    ("*", "abc", True),
    ("*c", "abc", True),
    ("a*", "a", True),
    ("a*", "abc", True),
    ("a*", "ab/c", True),
    ("a*/b", "abc/b", True),
    ("a*/b", "a/c/b", False),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True),
    ("a*b?c*x", "abxbbxdbxebxczzy", False),
    ("ab[c]", "abc", True),
    ("ab[b-d]", "abc", True),
    ("ab[e-g]", "abc", False),
    ("ab[^c]", "abc", False),
    ("ab[^b-d]", "abc", False),
    ("ab[^e-g]", "abc", True),
    ("a\\*b", "a*b", True),
    ("a\\*b", "ab", False),
    ("a?b", "a☺b", True),
    ("a[^a]b", "a☺b", True),
    ("a???b", "a☺b", False),
    ("a[^a][^a][^a]b", "a☺b", False),
    ("[a-ζ]*", "α", True),
    ("*[a-ζ]", "A", False),
    ("a?b", "a/b", False),
    ("a*b", "a/b", False),
    ("[\\]a]", "]", True),
    ("[\\-]", "-", True),
    ("[x\\-]", "x", True),
    ("[x\\-]", "-", True),
    ("[x\\-]", "z", False),
    ("[\\-x]", "x", True),
    ("[\\-x]", "-", True),
    ("[\\-x]", "a", False),
    ("*x", "xxx", True),
]


@pytest.mark.parametrize(("pattern", "text", "match"), GO_MATCH)
def test_go_filepath_match_table(pattern: str, text: str, match: bool) -> None:
    assert PatternMatcher([pattern]).matches(text) is match


@pytest.mark.parametrize(
    "pattern", ["[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[", "!"]
)
def test_bad_patterns(pattern: str) -> None:
    with pytest.raises(InvalidArgument):
        PatternMatcher([pattern])


def test_exclusions_flag() -> None:
    assert PatternMatcher(["docs", "!docs/README.md"]).exclusions
    assert not PatternMatcher(["docs"]).exclusions


# --- ignore file lookup and context walking ----------------------------------------------------


def make_tree(root: Path, files: list[str]) -> None:
    for f in files:
        p = root / f
        if f.endswith("/"):
            p.mkdir(parents=True, exist_ok=True)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(f)


def test_find_ignore_file_prefers_dockerfile_specific(tmp_path: Path) -> None:
    make_tree(tmp_path, ["Dockerfile", "sub/app.Dockerfile"])
    assert find_ignore_file(tmp_path) is None
    (tmp_path / ".dockerignore").write_text("a\n")
    assert find_ignore_file(tmp_path) == tmp_path / ".dockerignore"
    assert find_ignore_file(tmp_path, "sub/app.Dockerfile") == tmp_path / ".dockerignore"
    (tmp_path / "sub/app.Dockerfile.dockerignore").write_text("b\n")
    assert (
        find_ignore_file(tmp_path, "sub/app.Dockerfile")
        == tmp_path / "sub/app.Dockerfile.dockerignore"
    )
    assert load_patterns(tmp_path, "sub/app.Dockerfile") == ["b"]
    assert load_patterns(tmp_path, tmp_path / "sub/app.Dockerfile") == ["b"]
    assert load_patterns(tmp_path) == ["a"]


def test_walk_context(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        [
            "Dockerfile",
            ".dockerignore",
            "README.md",
            "main.go",
            "docs/a.md",
            "docs/README.md",
            "node_modules/x/index.js",
            ".git/HEAD",
            "src/app.py",
            "src/app.pyc",
            "src/sub/b.pyc",
            "empty/",
        ],
    )
    os.symlink("main.go", tmp_path / "link")
    patterns = read_patterns(
        "# build context\n.git\nnode_modules\n**/*.pyc\ndocs\n!docs/README.md\n*.md\n!README.md\n"
    )
    got = [(e.path, e.kind) for e in walk_context(tmp_path, patterns)]
    assert got == [
        (".dockerignore", "file"),
        ("Dockerfile", "file"),
        ("README.md", "file"),
        ("docs/README.md", "file"),
        ("empty", "dir"),
        ("link", "symlink"),
        ("main.go", "file"),
        ("src", "dir"),
        ("src/app.py", "file"),
        ("src/sub", "dir"),
    ]


def test_walk_without_exceptions_skips_excluded_dirs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(tmp_path, ["keep", "big/a", "big/b/c"])
    entered: list[str] = []
    real = os.scandir

    def spy(path):  # type: ignore[no-untyped-def]
        entered.append(os.path.relpath(path, tmp_path))
        return real(path)

    monkeypatch.setattr(os, "scandir", spy)
    assert [e.path for e in walk_context(tmp_path, ["big"])] == ["keep"]
    assert entered == ["."]


def test_keep_build_files() -> None:
    pats = keep_build_files(["*", "!src"], "Dockerfile")
    assert pats[-2:] == ["!.dockerignore", "!Dockerfile"]
    m = PatternMatcher(pats)
    assert not m.matches("Dockerfile") and not m.matches(".dockerignore") and m.matches("other")
    assert keep_build_files(["*.md"], "build/Dockerfile") == ["*.md"]


def test_build_files_to_remove() -> None:
    from dockyard.builder.dockerignore import build_files_to_remove

    assert build_files_to_remove(["secret.txt"]) == []
    assert build_files_to_remove(["*"]) == [".dockerignore", "Dockerfile"]
    assert build_files_to_remove([".dockerignore", "docker/"], "docker/app.Dockerfile") == [
        ".dockerignore",
        "docker/app.Dockerfile",
    ]
