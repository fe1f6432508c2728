"""Fast unit tests of the runtime's pure logic (no root): JSON codec, config checks, ids,
signals, CLI parsing, exec path lookup, state documents."""

from __future__ import annotations

import json
import os

import pytest

from dockyard.errors import InvalidArgument, NotFound
from dockyard.runtime import cli, config, fastjson, process, signals, state
from dockyard.runtime.errors import ExecutableNotFound, ExecutableNotRunnable
from dockyard.runtime.spec import default_spec


def test_fastjson_matches_json():
    doc = {"a": [1, 2.5, None, True, "é\n\"", [], {}], "b": {"c": {"x": [{"y": -1}]}}}
    assert fastjson.loads(json.dumps(doc)) == doc
    assert fastjson.loads(json.dumps(doc).encode()) == doc
    assert fastjson.dumps(doc) == json.dumps(doc, separators=(",", ":"))
    assert fastjson.dumps(doc, indent=2) == json.dumps(doc, indent=2)
    assert fastjson.dumps(doc, indent="\t") == json.dumps(doc, indent="\t")
    for bad, where in (("{", "line 1 column 2"), ('{"a":}', "column 6"), ("1 2", "Extra data"),
                       ("", "Expecting value")):
        with pytest.raises(ValueError, match=where):
            fastjson.loads(bad)


def write_config(tmp_path, cfg: dict) -> str:
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    return str(tmp_path)


@pytest.mark.parametrize("mutate,field", [
    (lambda c: c.pop("ociVersion"), "ociVersion"),
    (lambda c: c.__setitem__("root", {}), "root.path"),
    (lambda c: c["root"].__setitem__("path", "nope"), "root.path"),
    (lambda c: c.pop("process"), "process"),
    (lambda c: c["process"].__setitem__("args", []), "process.args"),
    (lambda c: c["process"].__setitem__("cwd", "rel"), "process.cwd"),
    (lambda c: c["process"].__setitem__("env", ["NOEQUALS"]), "process.env[0]"),
    (lambda c: c["process"]["user"].__setitem__("uid", -1), "process.user.uid"),
    (lambda c: c["process"]["capabilities"]["bounding"].append("CAP_BOGUS"),
     "process.capabilities.bounding"),
    (lambda c: c["process"]["rlimits"].append({"type": "RLIMIT_NOPE", "soft": 1, "hard": 1}),
     "process.rlimits[1].type"),
    (lambda c: c["mounts"].append({"type": "tmpfs"}), "mounts[7].destination"),
    (lambda c: c["linux"]["namespaces"].append({"type": "pid"}), "linux.namespaces[5].type"),
    (lambda c: c["linux"]["namespaces"].append({"type": "user"}), "linux.uidMappings"),
    (lambda c: c["linux"].__setitem__("uidMappings", [{"containerID": 0}]),
     "linux.uidMappings[0].hostID"),
    (lambda c: c.__setitem__("hooks", {"prestart": [{"path": "rel"}]}), "hooks.prestart[0].path"),
    (lambda c: c["linux"].__setitem__("cgroupsPath", "../x"), "linux.cgroupsPath"),
    (lambda c: c["linux"].__setitem__("rootfsPropagation", "weird"), "linux.rootfsPropagation"),
    (lambda c: c["linux"]["namespaces"].remove({"type": "uts"}), "hostname"),
])
def test_config_errors_name_the_field(tmp_path, mutate, field):
    cfg = default_spec()
    mutate(cfg)
    bundle = write_config(tmp_path, cfg)
    with pytest.raises(InvalidArgument) as e:
        config.load(bundle)
    assert field in str(e.value)


def test_config_missing_and_invalid(tmp_path):
    with pytest.raises(NotFound):
        config.load(str(tmp_path))
    (tmp_path / "config.json").write_text("[1,")
    with pytest.raises(InvalidArgument, match="invalid JSON"):
        config.load(str(tmp_path))
    bundle = write_config(tmp_path, default_spec())
    assert config.load(bundle)["_rootfs"] == os.path.realpath(tmp_path / "rootfs")


def test_ids_and_signals():
    for good in ("a", "web-1", "x_y.z+1"):
        state.check_id(good)
    for bad in ("", ".", "..", "a/b", "a b", "é"):
        with pytest.raises(InvalidArgument):
            state.check_id(bad)
    assert signals.parse("KILL") == signals.parse("SIGKILL") == signals.parse("9") == 9
    assert signals.parse("term") == 15 and signals.parse("RTMIN+2") == 36
    for bad in ("NOPE", "0", "99", "RTMIN+99"):
        with pytest.raises(InvalidArgument):
            signals.parse(bad)


def test_cli_parsing_like_urfave():
    opts, pos = cli._parse(["--root", "/r", "--log-format=json", "run", "-b", "x"], cli._GLOBAL)
    assert opts == {"root": "/r", "log_format": "json"} and pos == ["run", "-b", "x"]
    opts, pos = cli._parse(["-b", "B", "-d", "--pid-file=/p", "id"], cli._RUN)
    assert opts == {"bundle": "B", "detach": True, "pid_file": "/p"} and pos == ["id"]
    opts, pos = cli._parse(["-e", "A=1", "--env", "B=2", "id", "sh", "-c", "x"], cli._EXEC)
    assert opts == {"env": ["A=1", "B=2"]} and pos == ["id", "sh", "-c", "x"]
    with pytest.raises(cli.UsageError, match="flag provided but not defined: --nope"):
        cli._parse(["--nope", "id"], cli._RUN)
    with pytest.raises(cli.UsageError, match="needs an argument"):
        cli._parse(["-b"], cli._RUN)


def test_cli_version_and_help(capfd):
    assert cli.main(["--version"]) == 0
    assert "dockyard-runtime version" in capfd.readouterr().out
    assert cli.main(["--help"]) == 0 and "commands:" in capfd.readouterr().out


def test_cli_usage_errors_exit_1(capfd):
    assert cli.main(["create"]) == 1
    assert 'requires exactly 1 argument' in capfd.readouterr().err
    assert cli.main(["bogus"]) == 1
    assert cli.main(["--log-format", "json", "state"]) == 1
    line = capfd.readouterr().err.strip().splitlines()[-1]
    assert json.loads(line)["level"] == "error"


def test_lookpath_wording(tmp_path):
    exe = tmp_path / "tool"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    plain = tmp_path / "plain"
    plain.write_text("x")
    env = {"PATH": f"/nonexistent:{tmp_path}"}
    assert process.lookpath("tool", env) == str(exe)
    assert process.lookpath(str(exe), env) == str(exe)
    with pytest.raises(ExecutableNotFound, match=r'exec: "nope": executable file not found in \$PATH'):
        process.lookpath("nope", env)
    with pytest.raises(ExecutableNotFound, match="stat /no/such: no such file or directory"):
        process.lookpath("/no/such", env)
    with pytest.raises(ExecutableNotRunnable, match="permission denied"):
        process.lookpath(str(plain), env)
    with pytest.raises(ExecutableNotRunnable):
        process.lookpath(str(tmp_path), env)


def test_state_document_and_missing_container(tmp_path):
    root = str(tmp_path)
    with pytest.raises(NotFound, match="container does not exist"):
        state.load(root, "nope")
    state.reserve(root, "c")
    rec = {"id": "c", "pid": 2**22 + 12345, "bundle": "/b", "rootfs": "/b/rootfs",
           "created": state.now_rfc3339(), "annotations": {"k": "v"}}
    state.save(root, "c", rec)
    assert state.load(root, "c") == rec
    doc = state.public(root, rec)
    assert doc["status"] == "stopped" and doc["pid"] == 0 and doc["annotations"] == {"k": "v"}
    assert list(doc)[:4] == ["ociVersion", "id", "pid", "status"]
    assert state.now_rfc3339().endswith("Z")
