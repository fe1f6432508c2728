"""dockyardd's configuration: dockerd's flags where they apply, plus ``--config-file`` (daemon.json).

Command-line flags win over the file, as with dockerd (which refuses conflicts; we prefer flags).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.errors import InvalidArgument

DEFAULT_SOCKET = "unix:///run/dockyard.sock"


@dataclass(frozen=True)
class DaemonConfig:
    host: str = DEFAULT_SOCKET
    data_root: Path = Path("/var/lib/dockyard")
    exec_root: Path = Path("/run/dockyard")
    registry_mirrors: tuple[str, ...] = ()
    insecure_registries: tuple[str, ...] = ()
    log_level: str = "info"
    default_runtime: str = "dockyard-runtime"
    runtimes: dict[str, str] = field(default_factory=dict)  # name -> path
    network_instance: str = ""  # names our bridges/veths/nft tables (dockyard.network.naming)
    default_bind_ip: str = ""  # --ip: host address of -p without one, default bridge ("" = 0.0.0.0)
    default_network_opts: dict[str, dict[str, str]] = field(default_factory=dict)  # driver -> opts
    experimental: bool = False  # dockerd's --experimental: the CLI then allows e.g. build --squash

    @property
    def socket_path(self) -> str:
        if not self.host.startswith("unix://"):
            raise InvalidArgument(f"--host {self.host!r}: only unix:///path sockets are supported")
        return self.host[len("unix://"):]

    def runtime_path(self, name: str | None = None) -> str:
        name = name or self.default_runtime
        path = self.runtimes.get(name)
        if path is None:
            raise InvalidArgument(f"unknown runtime specified {name}")
        return path


def _find_runtime(name: str) -> str | None:
    # Our own runtime lives next to the interpreter in the venv's bin dir.
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    return shutil.which(name)


def _instance_of(data_root: Path) -> str:
    """Two daemons on one host must not share bridge names: 3 base-36 chars from the root."""
    import hashlib
    n = int.from_bytes(hashlib.sha256(str(data_root).encode()).digest()[:8], "big")
    chars = "0123456789abcdefghijklmnopqrstuvwxyz"
    return "".join(chars[(n // 36 ** i) % 36] for i in range(3))


def _network_opts(from_file: object, flags: list[str]) -> dict[str, dict[str, str]]:
    """daemon.json's ``default-network-opts`` ({driver: {opt: value}}) overlaid by the
    ``--default-network-opt driver=opt=value`` flags."""
    out: dict[str, dict[str, str]] = {}
    if from_file is not None:
        if not isinstance(from_file, dict) or not all(isinstance(v, dict) for v in from_file.values()):
            raise InvalidArgument('"default-network-opts": expected {"driver": {"option": "value"}}')
        out = {str(d): {str(k): str(v) for k, v in o.items()} for d, o in from_file.items()}
    for item in flags:
        driver, sep, rest = item.partition("=")
        opt, sep2, value = rest.partition("=")
        if not (sep and sep2 and driver and opt):
            raise InvalidArgument(f"--default-network-opt {item!r}: expected DRIVER=OPTION=VALUE")
        out.setdefault(driver, {})[opt] = value
    return out


def parse_args(argv: list[str] | None = None) -> DaemonConfig:
    ap = argparse.ArgumentParser(prog="dockyardd", description="Dockyard engine daemon")
    ap.add_argument("-H", "--host", action="append", default=None)
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--exec-root", default=None)
    ap.add_argument("--registry-mirror", action="append", default=None)
    ap.add_argument("--insecure-registry", action="append", default=None)
    ap.add_argument("-l", "--log-level", default=None,
                    choices=["debug", "info", "warn", "error", "fatal"])
    ap.add_argument("--config-file", default=None)
    ap.add_argument("--default-runtime", default=None)
    ap.add_argument("--add-runtime", action="append", default=[], metavar="NAME=PATH")
    ap.add_argument("--network-instance", default=None,
                    help="0-3 of [a-z0-9] naming this daemon's network objects (default: '' for "
                         "/var/lib/dockyard, else derived from --data-root)")
    ap.add_argument("--ip", default=None, metavar="IP",
                    help="host IP for port publishing from the default bridge network (default 0.0.0.0)")
    ap.add_argument("--default-network-opt", action="append", default=[], metavar="DRIVER=OPT=VALUE",
                    help="default driver options for new networks")
    ap.add_argument("--experimental", action="store_true", default=None,
                    help="enable experimental features (as dockerd: docker build --squash needs it)")
    ns = ap.parse_args(argv)

    file_cfg: dict = {}
    cfg_path = ns.config_file
    if cfg_path:
        try:
            file_cfg = json.loads(Path(cfg_path).read_text())
        except OSError as e:
            raise InvalidArgument(f"--config-file {cfg_path}: {e.strerror}") from e
        except ValueError as e:
            raise InvalidArgument(f"--config-file {cfg_path}: invalid JSON: {e}") from e
        if not isinstance(file_cfg, dict):
            raise InvalidArgument(f"--config-file {cfg_path}: must be a JSON object")

    runtimes: dict[str, str] = {}
    for name in ("dockyard-runtime", "runc"):
        found = _find_runtime(name)
        if found:
            runtimes[name] = found
    for name, spec in (file_cfg.get("runtimes") or {}).items():
        runtimes[name] = spec["path"] if isinstance(spec, dict) else str(spec)
    for item in ns.add_runtime:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise InvalidArgument(f"--add-runtime {item!r}: expected NAME=PATH")
        runtimes[name] = path
    default_runtime = ns.default_runtime or file_cfg.get("default-runtime")
    if default_runtime is None:
        default_runtime = "dockyard-runtime" if "dockyard-runtime" in runtimes else "runc"
    if default_runtime not in runtimes:
        raise InvalidArgument(f"--default-runtime {default_runtime}: no such runtime is configured")

    hosts = ns.host or file_cfg.get("hosts") or [DEFAULT_SOCKET]
    host = hosts[0]
    if host.startswith("/"):
        host = "unix://" + host
    data_root = Path(os.path.abspath(ns.data_root or file_cfg.get("data-root") or "/var/lib/dockyard"))
    instance = ns.network_instance
    if instance is None:
        instance = "" if str(data_root) == "/var/lib/dockyard" else _instance_of(data_root)
    bind_ip = ns.ip if ns.ip is not None else file_cfg.get("ip", "")
    try:
        if bind_ip and ipaddress.ip_address(bind_ip).version != 4:
            raise ValueError
    except ValueError:
        raise InvalidArgument(f"--ip {bind_ip!r}: expected an IPv4 address") from None
    net_opts = _network_opts(file_cfg.get("default-network-opts"), ns.default_network_opt)
    experimental = ns.experimental if ns.experimental is not None else file_cfg.get("experimental", False)
    if not isinstance(experimental, bool):
        raise InvalidArgument(f"--config-file {cfg_path}: \"experimental\" must be true or false")
    return DaemonConfig(
        experimental=experimental,
        network_instance=instance,
        default_bind_ip="" if bind_ip == "0.0.0.0" else str(bind_ip or ""),
        default_network_opts=net_opts,
        host=host,
        data_root=data_root,
        exec_root=Path(os.path.abspath(ns.exec_root or file_cfg.get("exec-root") or "/run/dockyard")),
        registry_mirrors=tuple(ns.registry_mirror or file_cfg.get("registry-mirrors") or ()),
        insecure_registries=tuple(ns.insecure_registry or file_cfg.get("insecure-registries") or ()),
        log_level=ns.log_level or file_cfg.get("log-level") or "info",
        default_runtime=default_runtime,
        runtimes=runtimes,
    )
