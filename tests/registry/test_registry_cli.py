"""The command line: `dockyard registry ...` mounting, YAML config, delete disabled."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from regtest_support import Reg

from dockyard.registry.config import build_config, load_file


def test_dockyard_cli_mounts_registry_group() -> None:
    r = subprocess.run([sys.executable, "-m", "dockyard.cli.main", "registry", "--help"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "serve" in r.stdout and "gc" in r.stdout


def test_yaml_config_file(tmp_path: Path) -> None:
    f = tmp_path / "reg.yaml"
    f.write_text("addr: 127.0.0.1:5050\nroot: /srv/reg\nstorage:\n  delete: false\n"
                 "auth:\n  access:\n    - account: alice\n      name: 'team/*'\n"
                 "      actions: pull,push\n")
    cfg = build_config(load_file(f), {})
    assert (cfg.host, cfg.port, str(cfg.root)) == ("127.0.0.1", 5050, "/srv/reg")
    assert cfg.delete_enabled is False
    assert cfg.auth.rules[0].actions == ("pull", "push")
    bad = tmp_path / "bad.yaml"
    bad.write_text("addr: [unclosed\n")
    r = subprocess.run([sys.executable, "-m", "dockyard.registry", "serve", "--config", str(bad),
                        "--root", str(tmp_path / "root")], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2 and "invalid YAML" in r.stderr
    assert not (tmp_path / "root").exists()


def test_delete_disabled(registry_factory: Any, tmp_path: Path) -> None:
    f = tmp_path / "reg.yaml"
    f.write_text("storage: {delete: false}\n")
    reg: Reg = registry_factory("--config", str(f))
    d, _ = reg.push_image("nodel", "v1")
    r = reg.req("DELETE", f"/v2/nodel/manifests/{d}")
    assert r.status == 405 and r.code == "UNSUPPORTED"
    r = reg.req("DELETE", "/v2/nodel/manifests/v1")
    assert r.status == 405
    assert reg.req("GET", "/v2/nodel/manifests/v1").status == 200
