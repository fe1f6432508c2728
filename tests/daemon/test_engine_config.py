from __future__ import annotations

import json
from pathlib import Path

import pytest

from dockyard.daemon.config import parse_args
from dockyard.errors import InvalidArgument


def test_defaults_and_flags(tmp_path: Path) -> None:
    cfg = parse_args(["--add-runtime", "mine=/bin/true", "--default-runtime", "mine"])
    assert cfg.host == "unix:///run/dockyard.sock" and cfg.socket_path == "/run/dockyard.sock"
    assert str(cfg.data_root) == "/var/lib/dockyard" and cfg.network_instance == ""
    assert cfg.runtime_path() == "/bin/true"
    cfg = parse_args(["-H", "unix:///tmp/x.sock", "--data-root", str(tmp_path), "--add-runtime", "m=/bin/true",
                      "--default-runtime", "m", "--registry-mirror", "http://127.0.0.1:5000"])
    assert cfg.socket_path == "/tmp/x.sock" and cfg.registry_mirrors == ("http://127.0.0.1:5000",)
    assert len(cfg.network_instance) == 3  # a secondary daemon names its network objects apart


def test_config_file_and_flags_win(tmp_path: Path) -> None:
    f = tmp_path / "daemon.json"
    f.write_text(json.dumps({"data-root": str(tmp_path / "d"), "log-level": "debug",
                             "runtimes": {"fast": {"path": "/bin/true"}}, "default-runtime": "fast",
                             "insecure-registries": ["127.0.0.1:5000"]}))
    cfg = parse_args(["--config-file", str(f)])
    assert cfg.data_root == tmp_path / "d" and cfg.log_level == "debug" and cfg.default_runtime == "fast"
    assert cfg.insecure_registries == ("127.0.0.1:5000",)
    assert parse_args(["--config-file", str(f), "--log-level", "warn"]).log_level == "warn"


@pytest.mark.parametrize("argv", [["--add-runtime", "noequals"], ["--default-runtime", "nosuch"],
                                  ["--config-file", "/nonexistent.json"]])
def test_bad_input(argv: list[str]) -> None:
    with pytest.raises(InvalidArgument):
        parse_args(argv)


def test_bad_config_file(tmp_path: Path) -> None:
    f = tmp_path / "bad.json"
    f.write_text("{nope")
    with pytest.raises(InvalidArgument, match="invalid JSON"):
        parse_args(["--config-file", str(f)])
    with pytest.raises(InvalidArgument, match="only unix"):
        _ = parse_args(["-H", "tcp://0.0.0.0:2375", "--add-runtime", "m=/bin/true",
                        "--default-runtime", "m"]).socket_path
