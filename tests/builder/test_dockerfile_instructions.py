"""Typed instructions: one case per instruction and form, and BuildKit's error messages."""

from __future__ import annotations

import pytest

from dockyard.builder.instructions import (
    Add,
    Arg,
    ArgSpec,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    Label,
    Maintainer,
    Onbuild,
    Run,
    Shell,
    Stopsignal,
    User,
    Volume,
    Workdir,
    parse_dockerfile,
)
from dockyard.builder.parser import Heredoc
from dockyard.errors import InvalidArgument


def one(line: str):
    df = parse_dockerfile("FROM scratch\n" + line)
    assert len(df.instructions) >= 2
    return df.instructions[1]


def error(line: str) -> str:
    with pytest.raises(InvalidArgument) as exc:
        parse_dockerfile("FROM scratch\n" + line)
    return str(exc.value)


def test_from_forms() -> None:
    df = parse_dockerfile(
        "FROM --platform=linux/arm64 busybox:1.36 AS Build\nFROM build\nFROM a@sha256:x"
    )
    a, b, c = df.instructions
    assert a == From(
        image="busybox:1.36",
        name="build",
        platform="linux/arm64",
        line=1,
        end_line=1,
        original="FROM --platform=linux/arm64 busybox:1.36 AS Build",
    )
    assert (b.image, b.name, b.platform) == ("build", None, None)
    assert c.image == "a@sha256:x"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "FROM a b",
            "dockerfile parse error on line 1: FROM requires either one or three arguments",
        ),
        ("FROM", "FROM requires either one or three arguments"),
        (
            "FROM a AS 1x",
            'invalid name for build stage: "1x", name can\'t start with a number or contain symbols',
        ),
        ("FROM a AS b$c", "invalid name for build stage"),
        ("FROM --foo=x a", "unknown flag: --foo"),
        ("FROM --platfrom=x a", "unknown flag: --platfrom (did you mean --platform?)"),
        ("FROM --platform a", "missing a value on flag: --platform"),
        ("FROM --platform=a --platform=b a", "duplicate flag specified: --platform"),
    ],
)
def test_from_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        parse_dockerfile(text)
    assert message in str(exc.value)


def test_run_forms() -> None:
    r = one("RUN echo $HOME")
    assert isinstance(r, Run) and r.cmd == ("echo $HOME",) and r.shell_form
    r = one('RUN ["echo", "$HOME"]')
    assert r.cmd == ("echo", "$HOME") and not r.shell_form
    r = one("RUN --network=none --security=insecure --mount=type=cache,target=/c,sharing=locked x")
    assert r.network == "none" and r.security == "insecure"
    (m,) = r.mounts
    assert (m.type, m.target, m.sharing, m.readonly) == ("cache", "/c", "locked", False)
    r = one("RUN --mount=target=/src --mount=type=secret,id=aws,target=/root/.aws/credentials x")
    assert [(m.type, m.readonly) for m in r.mounts] == [("bind", True), ("secret", True)]


def test_run_heredoc_script() -> None:
    r = one("RUN <<EOF\n  mkdir -p foo/bar\nEOF")
    assert r.heredocs == (Heredoc("EOF", "  mkdir -p foo/bar\n"),)
    assert r.script() == ("  mkdir -p foo/bar\n",)
    r = one("RUN <<-EOF\n\tset -e\n\techo hi\n\tEOF")
    assert r.script() == ("set -e\necho hi\n",)
    r = one("RUN <<EOT bash\n  set -ex\nEOT")
    assert r.script() == ("<<EOT bash\n  set -ex\nEOT",)
    r = one(
        "RUN <<FILE1 cat > file1 && <<FILE2 cat > file2\nI am\nfirst\nFILE1\nI am\nsecond\nFILE2"
    )
    assert r.script() == (
        "<<FILE1 cat > file1 && <<FILE2 cat > file2\nI am\nfirst\nFILE1\nI am\nsecond\nFILE2",
    )
    assert one("RUN echo hi").script() == ("echo hi",)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("RUN --foo x", "dockerfile parse error on line 2: unknown flag: --foo"),
        ("RUN --mont=type=cache,target=/x x", "unknown flag: --mont (did you mean --mount?)"),
        ("RUN --network=bridge x", 'unsupported network mode "bridge"'),
        ("RUN --security=loose x", 'unsupported security mode "loose"'),
        ("RUN --network x", "missing a value on flag: --network"),
        ("RUN --mount=type=nfs,target=/x x", 'unsupported mount type "nfs"'),
        ("RUN --mount=type=cache x", "mount target is required for cache mounts"),
        ("RUN --mount=type=bind,target=/x,mode=0700 x", 'mode not allowed for "bind" type mounts'),
        (
            "RUN --mount=type=bind,target=/x,sharing=locked x",
            "invalid cache sharing set for bind mount",
        ),
        ("RUN --mount=type=cache,target=/x,sharing=bad x", 'unsupported sharing value "bad"'),
        ("RUN --mount=type=bind,target=/x,bogus=1 x", "unexpected key 'bogus' in 'bogus=1'"),
        (
            "RUN --mount=type=bind,target=/x,required x",
            "unexpected key 'required' for mount type 'bind'",
        ),
        (
            "RUN --mount=type=bind,target=/x,nothing x",
            "invalid field 'nothing' must be a key=value pair",
        ),
        ("RUN --mount=type=secret x", "invalid secret mount. one of source, target required"),
        ("RUN --mount=type=cache,target=/x,uid=abc x", "invalid value abc for uid"),
        ("RUN --mount=type=cache,target=/x,mode=9 x", "invalid value 9 for mode"),
        ("RUN --mount=type=bind,target=/x,ro=maybe x", "invalid value for ro: maybe"),
    ],
)
def test_run_errors(line: str, message: str) -> None:
    assert message in error(line)


def test_mount_details() -> None:
    r = one(
        "RUN --mount=type=cache,id=go,target=/root/.cache,mode=0700,uid=1000,gid=1000,from=base,source=/s x"
    )
    (m,) = r.mounts
    assert (m.id, m.mode, m.uid, m.gid, m.from_, m.source) == (
        "go",
        0o700,
        1000,
        1000,
        "base",
        "/s",
    )
    (m,) = one("RUN --mount=type=tmpfs,target=/t,size=64m x").mounts
    assert m.size == 64 << 20 and not m.readonly
    (m,) = one("RUN --mount=type=bind,target=/x,rw x").mounts
    assert not m.readonly
    (m,) = one("RUN --mount=type=secret,id=API_KEY,env=API_KEY,required x").mounts
    assert m.env == "API_KEY" and m.required
    (m,) = one("RUN --mount=type=ssh x").mounts
    assert m.type == "ssh" and m.readonly


def test_cmd_entrypoint() -> None:
    c = one('CMD ["executable","param1","param2"]')
    assert isinstance(c, Cmd) and c.cmd == ("executable", "param1", "param2") and not c.shell_form
    c = one("CMD command param1 param2")
    assert c.cmd == ("command param1 param2",) and c.shell_form
    e = one("ENTRYPOINT exec top -b")
    assert isinstance(e, Entrypoint) and e.cmd == ("exec top -b",) and e.shell_form
    assert one("ENTRYPOINT []").cmd is None
    assert one('ENTRYPOINT ["top", "-b"]').cmd == ("top", "-b")


def test_env_label_arg_keep_quotes_for_expansion() -> None:
    e = one('ENV MY_NAME="John Doe" MY_DOG=Rex\\ The\\ Dog MY_CAT=fluffy')
    assert isinstance(e, Env)
    assert e.pairs == (
        ("MY_NAME", '"John Doe"'),
        ("MY_DOG", "Rex\\ The\\ Dog"),
        ("MY_CAT", "fluffy"),
    )
    assert one("ENV ONE TWO= THREE=world").pairs == (("ONE", "TWO= THREE=world"),)
    lab = one('LABEL "com.example.vendor"="ACME Incorporated" version="1.0"')
    assert isinstance(lab, Label) and lab.pairs[1] == ("version", '"1.0"')
    a = one("ARG user1 buildno=1 v=")
    assert isinstance(a, Arg)
    assert a.args == (ArgSpec("user1"), ArgSpec("buildno", "1"), ArgSpec("v", ""))
    assert (a.name, a.default) == ("user1", None)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("ENV", "ENV requires at least one argument"),
        ("ENV =x", "ENV names can not be blank"),
        ("LABEL", "LABEL requires at least one argument"),
        ("ARG", "ARG requires at least one argument"),
        ("ARG =x", "ARG names can not be blank"),
        ("ENV --x=y a=b", "unknown flag: --x"),
    ],
)
def test_kv_errors(line: str, message: str) -> None:
    assert message in error(line)


def test_copy_add() -> None:
    c = one(
        "COPY --from=build --chown=55:mygroup --chmod=644 --link --parents --exclude=*.txt --exclude=x a b /dst/"
    )
    assert isinstance(c, Copy)
    assert (c.sources, c.dest, c.from_, c.chown, c.chmod) == (
        ("a", "b"),
        "/dst/",
        "build",
        "55:mygroup",
        "644",
    )
    assert c.link and c.parents and c.exclude == ("*.txt", "x")
    c = one("COPY --link=false a b")
    assert not c.link
    c = one('COPY ["a b", "c"]')
    assert c.sources == ("a b",) and c.dest == "c"
    c = one("COPY --chmod=u=rwX,go=rX . /app/")
    assert c.chmod == "u=rwX,go=rX"
    a = one("ADD --keep-git-dir=true --checksum=sha256:abc https://example.com/a.tgz /x")
    assert isinstance(a, Add) and a.keep_git_dir and a.checksum == "sha256:abc" and a.unpack is None
    assert one("ADD --unpack=false my-archive.tar.gz .").unpack is False
    assert one("ADD --unpack x .").unpack is True


def test_copy_heredoc_sources() -> None:
    c = one("COPY <<EOF greeting.txt\nhello world\nEOF")
    assert c.sources == () and c.dest == "greeting.txt"
    assert c.heredocs == (Heredoc("EOF", "hello world\n"),)
    c = one("COPY <<A <<B x /d/\n1\nA\n2\nB")
    assert c.sources == ("x",) and [h.name for h in c.heredocs] == ["A", "B"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "COPY a",
            "COPY requires at least two arguments, but only one was provided. Destination could not be determined",
        ),
        ("ADD a", "ADD requires at least two arguments"),
        ("COPY --keep-git-dir a b", "unknown flag: --keep-git-dir"),
        ("ADD --from=x a b", "unknown flag: --from"),
        ("ADD --parents a b", "unknown flag: --parents"),
        ("COPY --form=x a b", "unknown flag: --form (did you mean --from?)"),
        ("COPY --link=maybe a b", "expecting boolean value for flag --link, not: maybe"),
        ("COPY --link= a b", "missing a value on flag: --link"),
        ("COPY --exclude a b", "missing a value on flag: --exclude"),
        ("COPY a <<EOF\nx\nEOF", "COPY cannot accept a heredoc as a destination"),
        ("ADD --checksum=sha256:x a b /c/", "checksum can't be specified for multiple sources"),
        ("ADD --checksum=sha256:x local.tgz /c/", "checksum requires HTTP(S) or Git sources"),
        ("COPY --chmod=999 a b", "invalid chmod parameter"),
    ],
)
def test_copy_errors(line: str, message: str) -> None:
    assert message in error(line)


def test_simple_instructions() -> None:
    assert one("WORKDIR /path/to/workdir") == Workdir(
        path="/path/to/workdir", line=2, end_line=2, original="WORKDIR /path/to/workdir"
    )
    assert isinstance(one("USER patrick"), User) and one("USER 1000:1000").user == "1000:1000"
    assert one("VOLUME /var/log /var/db") == Volume(
        paths=("/var/log", "/var/db"), line=2, end_line=2, original="VOLUME /var/log /var/db"
    )
    assert one('VOLUME ["/data"]').paths == ("/data",)
    assert one("EXPOSE 80 443/tcp 53/udp") == Expose(
        ports=("443/tcp", "53/udp", "80"), line=2, end_line=2, original="EXPOSE 80 443/tcp 53/udp"
    )
    assert one("STOPSIGNAL SIGKILL") == Stopsignal(
        signal="SIGKILL", line=2, end_line=2, original="STOPSIGNAL SIGKILL"
    )
    assert isinstance(one("MAINTAINER me@x"), Maintainer)
    assert one('SHELL ["powershell", "-command"]') == Shell(
        shell=("powershell", "-command"),
        line=2,
        end_line=2,
        original='SHELL ["powershell", "-command"]',
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("WORKDIR", "WORKDIR requires exactly one argument"),
        ("USER", "USER requires exactly one argument"),
        ("STOPSIGNAL", "STOPSIGNAL requires exactly one argument"),
        ("MAINTAINER", "MAINTAINER requires exactly one argument"),
        ("EXPOSE", "EXPOSE requires at least one argument"),
        ("VOLUME", "VOLUME requires at least one argument"),
        ('VOLUME [""]', "VOLUME specified can not be an empty string"),
        ("SHELL /bin/sh -c", "SHELL requires the arguments to be in JSON form"),
        ("SHELL []", "SHELL requires at least one argument"),
        ("WORKDIR --x=1 /a", "unknown flag: --x"),
    ],
)
def test_simple_errors(line: str, message: str) -> None:
    assert message in error(line)


def test_healthcheck() -> None:
    h = one(
        "HEALTHCHECK --interval=5m --timeout=3s --start-period=1m30s --start-interval=500ms --retries=4 \\\n  CMD curl -f http://localhost/ || exit 1"
    )
    assert isinstance(h, Healthcheck)
    assert h.test == ("CMD-SHELL", "curl -f http://localhost/ || exit 1")
    assert (h.interval, h.timeout, h.start_period, h.start_interval, h.retries) == (
        300_000_000_000,
        3_000_000_000,
        90_000_000_000,
        500_000_000,
        4,
    )
    assert h.end_line == 3
    h = one('HEALTHCHECK CMD ["/bin/check", "-x"]')
    assert h.test == ("CMD", "/bin/check", "-x") and h.interval is None
    h = one("HEALTHCHECK --interval=0s --retries=0 CMD x")
    assert (h.interval, h.retries) == (0, 0)
    h = one("HEALTHCHECK NONE")
    assert h.none and h.test == ("NONE",)
    # BuildKit does not look at the flags of HEALTHCHECK NONE
    assert one("HEALTHCHECK --timeo=1s NONE").none


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("HEALTHCHECK", "HEALTHCHECK requires at least one argument"),
        ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
        ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
        ("HEALTHCHECK RUN x", 'Unknown type "RUN" in HEALTHCHECK (try CMD)'),
        ("HEALTHCHECK --interval=500us CMD x", 'Interval "interval" cannot be less than 1ms'),
        ("HEALTHCHECK --timeout=abc CMD x", 'time: invalid duration "abc"'),
        ("HEALTHCHECK --timeout=5 CMD x", 'time: missing unit in duration "5"'),
        ("HEALTHCHECK --retries=-1 CMD x", "--retries cannot be negative (-1)"),
        ("HEALTHCHECK --retries=x CMD x", 'parsing "x": invalid syntax'),
        ("HEALTHCHECK --intervl=1s CMD x", "unknown flag: --intervl (did you mean --interval?)"),
    ],
)
def test_healthcheck_errors(line: str, message: str) -> None:
    assert message in error(line)


def test_onbuild() -> None:
    o = one("ONBUILD ADD . /app/src")
    assert isinstance(o, Onbuild) and o.expression == "ADD . /app/src"
    assert isinstance(o.inner, Add) and o.inner.sources == (".",)
    o = one("onbuild run <<EOF\necho hi\nEOF")
    assert o.expression == "run <<EOF\necho hi\nEOF"
    assert isinstance(o.inner, Run) and o.inner.heredocs[0].content == "echo hi\n"
    o = one("ONBUILD COPY --from=build /usr/bin/app /app")
    assert o.inner.from_ == "build"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("ONBUILD", "ONBUILD requires at least one argument"),
        ("ONBUILD ONBUILD RUN x", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
        ("ONBUILD FROM x", "FROM isn't allowed as an ONBUILD trigger"),
        ("ONBUILD maintainer x", "MAINTAINER isn't allowed as an ONBUILD trigger"),
        ("ONBUILD COPY --bad=1 a b", "unknown flag: --bad"),
        ("ONBUILD FOO x", "unknown instruction: FOO"),
    ],
)
def test_onbuild_errors(line: str, message: str) -> None:
    assert message in error(line)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "FOO bar",
            "dockerfile parse error on line 2: unknown instruction: FOO (did you mean FROM?)",
        ),
        ("XYZZY bar", "dockerfile parse error on line 2: unknown instruction: XYZZY"),
        ("RUNN echo", "unknown instruction: RUNN (did you mean RUN?)"),
        ("runn echo", "unknown instruction: RUNN (did you mean RUN?)"),
        ("COPPY a b", "unknown instruction: COPPY (did you mean COPY?)"),
        ("&& echo", "unknown instruction: &&"),
    ],
)
def test_unknown_instruction(line: str, message: str) -> None:
    assert error(line) == message if message.startswith("dockerfile") else message in error(line)


def test_error_names_start_line_of_continued_instruction() -> None:
    with pytest.raises(
        InvalidArgument, match="^dockerfile parse error on line 4: unknown flag: --bad$"
    ):
        parse_dockerfile("FROM a\nRUN a \\\n  b\nCOPY --bad \\\n x y")


def test_dockerfile_directives_exposed() -> None:
    df = parse_dockerfile("# syntax=docker/dockerfile:1\n# check=error=true\n# escape=`\nFROM a")
    assert (df.syntax, df.check, df.escape) == ("docker/dockerfile:1", "error=true", "`")


def test_parse_trigger_from_image_config() -> None:
    from dockyard.builder.instructions import parse_trigger

    o = one("ONBUILD RUN <<EOF\necho hi\nEOF")
    t = parse_trigger(o.expression)
    assert isinstance(t, Run) and t.script() == ("echo hi\n",)
    t = parse_trigger("ADD . /app/src")
    assert isinstance(t, Add) and t.dest == "/app/src"
    assert isinstance(parse_trigger("COPY a c:\\", escape="`"), Copy)
    for bad, message in [
        ("RUN a\nRUN b", "onbuild trigger should be a single expression"),
        ("FROM x", "FROM isn't allowed as an ONBUILD trigger"),
        ("ONBUILD RUN x", "Chaining ONBUILD"),
        ("NOPE x", "unknown instruction: NOPE"),
    ]:
        with pytest.raises(InvalidArgument, match=message):
            parse_trigger(bad)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("RUN --mount=type=cache,target=/x,mode=0o755 x", "invalid value 0o755 for mode"),
        ("RUN --mount=type=cache,target=/x,uid=1_000 x", "invalid value 1_000 for uid"),
        ("RUN --mount=type=cache,target=/x,gid=-1 x", "invalid value -1 for gid"),
        ("RUN --mount=type=cache,target=/x,uid=4294967296 x", "invalid value 4294967296 for uid"),
        ("HEALTHCHECK --retries=1_0 CMD x", "invalid syntax"),
        ("RUN --mount=type=tmpfs,target=/t,size=lots x", "invalid size: 'lots'"),
    ],
)
def test_go_number_parsing(line: str, message: str) -> None:
    assert message in error(line)


def test_mount_with_variables_is_validated_after_expansion() -> None:
    from dockyard.builder.expand import expand_instruction

    r = one("RUN --mount=type=$T,target=/c,from=base x")
    (m,) = r.mounts
    assert m.pending and m.from_ == "base"
    (m,) = expand_instruction(r, {"T": "cache"}).mounts
    assert not m.pending and (m.type, m.target, m.readonly) == ("cache", "/c", False)
    with pytest.raises(InvalidArgument, match="line 2: unsupported mount type"):
        expand_instruction(r, {"T": "nope"})


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "RUN --mount=from=$STAGE,target=/x x",
            "'from' doesn't support variable expansion, define alias stage instead",
        ),
        (
            "RUN --mount=type=secret,id=a,sharing=locked x",
            "invalid cache sharing set for secret mount",
        ),
        (
            "RUN --mount=type=cahce,target=/x x",
            'unsupported mount type "cahce" (did you mean cache?)',
        ),
        (
            "RUN --mount=type=cache,trget=/x x",
            "unexpected key 'trget' in 'trget=/x' (did you mean target?)",
        ),
        ("RUN --mount=type=bind,dest=/x x", "unexpected key 'dest'"),
    ],
)
def test_more_mount_errors(line: str, message: str) -> None:
    assert message in error(line)


def test_run_shebang_heredoc() -> None:
    r = one('RUN <<EOT\n#!/usr/bin/env python\nprint("hello world")\nEOT')
    assert r.shebang_file() == ("EOT", '#!/usr/bin/env python\nprint("hello world")\n')
    r = one("RUN <<-EOT\n\t#!/bin/sh\n\techo hi\n\tEOT")
    assert r.shebang_file() == ("EOT", "#!/bin/sh\necho hi\n")
    assert one("RUN <<EOT\necho hi\nEOT").shebang_file() is None
    assert one("RUN <<EOT cat\n#!/bin/sh\nEOT").shebang_file() is None
    assert one("RUN echo hi").shebang_file() is None
