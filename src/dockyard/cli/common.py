"""Shared by the CLI verbs: the client, error -> exit code, small parsers."""

from __future__ import annotations

import re
import sys
from typing import Any, NoReturn

import click


def client_of(obj: dict[str, Any]) -> Any:
    from dockyard.client.api import Client
    return Client(obj.get("host"))


def fail(err: BaseException, code: int = 1) -> NoReturn:
    click.echo(f"dockyard: Error response from daemon: {err}", err=True)
    sys.exit(code)


def parse_env_file(path: str) -> list[str]:
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            out.append(line)
    return out


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([bkmg]?)", text.strip().lower())
    if not m:
        raise click.BadParameter(f"invalid size: {text!r}")
    return int(float(m.group(1)) * {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2)])
