"""Unit tests of the CLI's pure logic: flag grammar, Go-template subset, tabwriter, units."""

from __future__ import annotations

import json

import pytest

from dockyard.cli.common import UsageError, filters, human_duration, human_size, parse_size
from dockyard.cli.containers import ContainerRow, container_config, display_ports, port_bindings
from dockyard.cli.flags import FlagError, parse
from dockyard.cli.main import GROUPS, VERBS, _resolve
from dockyard.cli.template import Template, TemplateError, render_rows, tabwrite
from dockyard.client.fast import loads, quote, url

SPEC = "a|all q|quiet no-trunc f|filter* format= n|last# d|detach i|interactive t|tty p|publish*"


def test_flags_pflag_grammar() -> None:
    o, args = parse(["-aq", "--filter", "x=1", "-fy=2", "--format={{.ID}}", "-n", "3", "pos"], SPEC)
    assert (o["all"], o["quiet"], o["filter"], o["format"], o["last"], args) == \
        (True, True, ["x=1", "y=2"], "{{.ID}}", 3, ["pos"])
    o, args = parse(["-it", "-p8080:80", "-p", "53:53/udp", "img", "-a"], SPEC, interspersed=False)
    assert o["interactive"] and o["tty"] and o["publish"] == ["8080:80", "53:53/udp"]
    assert args == ["img", "-a"] and not o["all"]  # the container's own flags are left alone
    o, args = parse(["x", "-a", "--", "-q"], SPEC)
    assert o["all"] and not o["quiet"] and args == ["x", "-q"]
    assert parse(["--all=false"], SPEC)[0]["all"] is False


@pytest.mark.parametrize("argv,msg", [
    (["--nope"], "unknown flag: --nope"), (["-z"], "unknown shorthand flag: 'z' in -z"),
    (["--format"], "flag needs an argument: --format"), (["-n", "x"], 'invalid argument "x" for "-n"'),
    (["--all=maybe"], "invalid argument"),
])
def test_flags_errors(argv: list[str], msg: str) -> None:
    with pytest.raises(FlagError, match=msg):
        parse(argv, SPEC)


def test_template_subset() -> None:
    data = {"Name": "web", "State": {"Running": True, "Pid": 7}, "Tags": ["a", "b"],
            "Nets": {"n1": {"IP": "10.0.0.2"}, "n2": {"IP": "10.0.1.2"}}, "Labels": {"k": "v"}}
    t = Template('{{.Name}} {{.State.Running}} {{join .Tags ","}} {{range .Nets}}[{{.IP}}]{{end}} '
                 '{{if .State.Running}}up{{else}}down{{end}} {{index .Labels "k"}} {{json .Tags}} '
                 '{{.Name | upper}} {{len .Tags}} {{.Missing}}')
    assert t.render(data) == 'web true a,b [10.0.0.2][10.0.1.2] up v ["a","b"] WEB 2 <no value>'
    assert Template("{{- .Name -}} ").render(data) == "web"
    assert Template("{{json .}}").render({"p": "a->b"}) == '{"p":"a->b"}'  # SetEscapeHTML(false)
    assert render_rows("json", [{"p": "a->b"}], "", {}) == '{"p":"a-\\u003eb"}\n'  # json.Marshal
    with pytest.raises(TemplateError):
        Template("{{if .Name}}x").render(data)
    with pytest.raises(TemplateError):
        Template("{{nosuchfunc .Name}}").render(data)


def test_tabwriter_matches_go() -> None:
    # Go: tabwriter.NewWriter(out, 10, 1, 3, ' ', 0): min width 10, padding 3, last cell unpadded
    text = tabwrite(["CONTAINER ID\tNAMES", "abc\tx", "abcdefabcdef01\ty"])
    assert text == "CONTAINER ID     NAMES\nabc              x\nabcdefabcdef01   y\n"
    assert tabwrite(["a\tb", "c\td"]) == "a         b\nc         d\n"


def test_render_rows_table_and_plain() -> None:
    rows = [{"ID": "1", "Name": "a"}, {"ID": "22", "Name": "b"}]
    assert render_rows("table {{.ID}}\\t{{.Name}}", rows, "", {"ID": "ID", "Name": "NAME"}) == \
        "ID        NAME\n1         a\n22        b\n"
    assert render_rows("{{.Name}}", rows, "", {}) == "a\nb\n"
    assert render_rows("json", rows, "", {}).splitlines()[0] == '{"ID":"1","Name":"a"}'
    assert render_rows(None, [], "table {{.ID}}", {"ID": "CONTAINER ID"}) == "CONTAINER ID\n"


def test_container_row_like_docker() -> None:
    r = ContainerRow({"Id": "f" * 64, "Names": ["/web", "/other/link"], "Image": "sha256:" + "a" * 64,
                      "Command": "sh -c 'echo hello; sleep 300'", "Ports": [
                          {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                          {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                          {"PrivatePort": 53, "Type": "udp"}]}, trunc=True)
    assert (r.ID, r.Names, r.Image) == ("f" * 12, "web", "a" * 12)
    assert r.Command == '"sh -c \'echo hello; …"'
    assert r.Ports == "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp, 53/udp"
    assert display_ports([]) == ""


def test_units() -> None:
    assert [human_size(n, 3) for n in (0, 999, 1984000, 4_260_000_000)] == ["0B", "999B", "1.98MB", "4.26GB"]
    assert human_size(1984000) == "1.984MB"
    assert [human_duration(s) for s in (0.5, 1, 59, 60, 3000, 3600, 7200, 86400 * 3)] == [
        "Less than a second", "1 second", "59 seconds", "About a minute", "50 minutes", "About an hour",
        "2 hours", "3 days"]
    assert parse_size("64m") == 64 << 20 and parse_size("1GB") == 1 << 30 and parse_size("512") == 512
    with pytest.raises(UsageError):
        parse_size("lots")
    assert filters(["name=a", "name=b", "status=exited"]) == {"name": ["a", "b"], "status": ["exited"]}
    with pytest.raises(UsageError, match="bad format of filter"):
        filters(["oops"])


def test_port_bindings_and_config() -> None:
    assert port_bindings(["8080:80", "127.0.0.1:53:53/udp", "90"]) == {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}], "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "53"}],
        "90/tcp": [{"HostIp": "", "HostPort": ""}]}
    assert list(port_bindings(["8000-8001:80-81"])) == ["80/tcp", "81/tcp"]
    with pytest.raises(UsageError, match="invalid port"):
        port_bindings(["x:y"])
    o, args = parse(["-it", "--rm", "-e", "A=1", "-m", "64m", "--restart", "no", "-l", "k=v", "img", "sh"],
                    __import__("dockyard.cli.containers", fromlist=["RUN_SPEC"]).RUN_SPEC, interspersed=False)
    cfg = container_config(args[0], args[1:], o)
    assert (cfg["Image"], cfg["Cmd"], cfg["Tty"], cfg["OpenStdin"], cfg["Env"], cfg["Labels"]) == \
        ("img", ["sh"], True, True, ["A=1"], {"k": "v"})
    assert cfg["HostConfig"]["Memory"] == 64 << 20 and cfg["HostConfig"]["AutoRemove"] is True
    o["restart"] = "always"
    with pytest.raises(UsageError, match="--restart and --rm"):
        container_config("img", [], o)


def test_fast_client_codec() -> None:
    doc = {"a": [1, 2.5, None, True, False], "b": {"c": 'é"x'}, "n": -1e3}
    assert loads(json.dumps(doc)) == doc
    assert quote('say "hi" …') == '"say \\"hi\\" …"'
    assert url("/x", {"filters": {"name": ["a b"]}, "all": True, "skip": None}) == \
        "/v1.50/x?filters=%7B%22name%22%3A%5B%22a%20b%22%5D%7D&all=1"


def test_verb_table_resolves() -> None:
    import importlib
    for verb, target in VERBS.items():
        mod, fn = target.split(":")
        assert callable(getattr(importlib.import_module(f"dockyard.cli.{mod}"), fn)), verb
    for group, subs in GROUPS.items():
        for sub in subs:
            name, target, _ = _resolve(group, [sub])
            mod, fn = target.split(":")
            assert callable(getattr(importlib.import_module(f"dockyard.cli.{mod}"), fn)), name


class _FakeSock:
    """recv() hands out the bytes in small pieces, as a slow daemon would."""

    def __init__(self, data: bytes, step: int = 3) -> None:
        self.pieces = [data[i:i + step] for i in range(0, len(data), step)]
        self.closed = False

    def recv(self, n: int) -> bytes:
        return self.pieces.pop(0) if self.pieces else b""

    def close(self) -> None:
        self.closed = True


def test_fast_response_chunked_lines_and_lengths() -> None:
    from dockyard.client.fast import Response, dumps
    body = b"5\r\n{\"a\":\r\n6\r\n1}\n{\"b\r\n5\r\n\":2}\n\r\n0\r\n\r\n"
    sock = _FakeSock(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Y: z\r\n\r\n" + body)
    r = Response(sock, "GET")
    assert r.status == 200 and r.getheader("x-y") == "z"
    assert list(r) == [b'{"a":1}\n', b'{"b":2}\n'] and sock.closed
    r = Response(_FakeSock(b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nabcdEXTRA"), "GET")
    assert (r.status, r.read(), r.read1()) == (404, b"abcd", b"")
    r = Response(_FakeSock(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"), "HEAD")
    assert r.read() == b""
    assert dumps({"a": [1, 2.5, None, True, "é\n"], "b": {}}) == '{"a":[1,2.5,null,true,"\\u00e9\\n"],"b":{}}'
    assert json.loads(dumps({"k": ["x", False, -3]})) == {"k": ["x", False, -3]}
    with pytest.raises(TypeError):
        dumps({"s": {1, 2}})


@pytest.mark.parametrize("verb", [["ps"], ["ps", "-a", "--format", "{{.Names}}"], ["version"], ["images"],
                                  ["--help"]])
def test_fast_verbs_import_little(verb: list[str]) -> None:
    """The start-up contract: the frequent verbs load no click, http.client, socket, json or re."""
    import subprocess
    import sys
    code = ("import sys; sys.argv = ['dockyard', '-H', 'unix:///nonexistent.sock'] + sys.argv[1:]\n"
            "from dockyard.cli.main import main; main()\n"
            "heavy = {'click', 'http.client', 'socket', 'json', 're', 'argparse', 'typing', 'aiohttp'}\n"
            "sys.stderr.write('LOADED=' + ','.join(sorted(heavy & set(sys.modules))))")
    r = subprocess.run([sys.executable, "-S", "-c", code, *verb], capture_output=True, text=True, timeout=30,
                       env={"PYTHONPATH": ":".join(p for p in sys.path if p)})
    assert "LOADED=" in r.stderr, r.stderr
    assert r.stderr.rsplit("LOADED=", 1)[1] == "", r.stderr
