"""More verbs: build, pull, push, network, volume (thin wrappers over the Engine API)."""

from __future__ import annotations

import base64
import io
import json
import os
import sys
import tarfile
from typing import Any

import click

from dockyard.cli.common import client_of, fail

_NO_AUTH = base64.urlsafe_b64encode(b"{}").decode()


def _stream_json(resp: Any) -> int:
    """Print docker's JSON-lines progress; 1 if an error line came."""
    rc = 0
    for raw in resp:
        if not raw.strip():
            continue
        try:
            msg = json.loads(raw)
        except ValueError:
            continue
        if msg.get("error"):
            click.echo(msg["error"], err=True)
            rc = 1
        elif msg.get("stream"):
            click.echo(msg["stream"], nl=False)
        elif msg.get("status"):
            click.echo(f"{msg['id']}: {msg['status']}" if msg.get("id") else msg["status"])
        elif msg.get("aux", {}).get("ID"):
            pass
    return rc


@click.command()
@click.option("-t", "--tag", "tags", multiple=True)
@click.option("-f", "--file", "dockerfile")
@click.option("--no-cache", is_flag=True)
@click.option("-q", "--quiet", is_flag=True)
@click.option("--build-arg", multiple=True)
@click.option("--target")
@click.argument("path")
@click.pass_obj
def build(obj: dict[str, Any], tags: tuple[str, ...], dockerfile: str | None, no_cache: bool, quiet: bool,
          build_arg: tuple[str, ...], target: str | None, path: str) -> None:
    """Build an image from a Dockerfile (the context is sent as a tar)."""
    from dockyard import errors
    if not os.path.isdir(path):
        fail(f"unable to prepare context: path {path!r} not found")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        tf.add(path, arcname=".")
        if dockerfile and not os.path.abspath(dockerfile).startswith(os.path.abspath(path) + os.sep):
            tf.add(dockerfile, arcname=".dockyard.Dockerfile")
            dockerfile = ".dockyard.Dockerfile"
    args = dict(a.split("=", 1) if "=" in a else (a, os.environ.get(a, "")) for a in build_arg)
    query: dict[str, Any] = {"t": list(tags) or None, "nocache": no_cache, "q": quiet,
                             "buildargs": json.dumps(args) if args else None, "target": target,
                             "dockerfile": os.path.relpath(dockerfile, path) if dockerfile and
                             dockerfile != ".dockyard.Dockerfile" else dockerfile, "version": "1"}
    try:
        resp = client_of(obj).request("POST", "/build", query, body=buf.getvalue(),
                                      headers={"X-Registry-Config": _NO_AUTH})
    except errors.DockyardError as e:
        fail(e)
    sys.exit(_stream_json(resp))


@click.command()
@click.argument("ref")
@click.pass_obj
def pull(obj: dict[str, Any], ref: str) -> None:
    """Pull an image from a registry."""
    from dockyard import errors
    name, tag = ref, "latest"
    if "@" in ref:
        name, tag = ref.split("@", 1)
    elif ":" in ref.rsplit("/", 1)[-1]:
        name, tag = ref.rsplit(":", 1)
    try:
        resp = client_of(obj).request("POST", "/images/create", {"fromImage": name, "tag": tag},
                                      headers={"X-Registry-Auth": _NO_AUTH})
    except errors.DockyardError as e:
        fail(e)
    sys.exit(_stream_json(resp))


@click.command()
@click.argument("ref")
@click.pass_obj
def push(obj: dict[str, Any], ref: str) -> None:
    """Push an image to a registry."""
    from dockyard import errors
    name, tag = ref, ""
    if ":" in ref.rsplit("/", 1)[-1]:
        name, tag = ref.rsplit(":", 1)
    try:
        resp = client_of(obj).request("POST", f"/images/{name}/push", {"tag": tag or None},
                                      headers={"X-Registry-Auth": _NO_AUTH})
    except errors.DockyardError as e:
        fail(e)
    sys.exit(_stream_json(resp))


@click.group()
def network() -> None:
    """Manage networks."""


@network.command(name="ls")
@click.pass_obj
def network_ls(obj: dict[str, Any]) -> None:
    from dockyard import errors
    try:
        rows = client_of(obj).json("GET", "/networks")
    except errors.DockyardError as e:
        fail(e)
    click.echo(f"{'NETWORK ID':<15}{'NAME':<20}{'DRIVER':<10}")
    for n in rows:
        click.echo(f"{n['Id'][:12]:<15}{n['Name']:<20}{n['Driver']:<10}")


@network.command(name="create")
@click.option("--subnet")
@click.option("--internal", is_flag=True)
@click.argument("name")
@click.pass_obj
def network_create(obj: dict[str, Any], subnet: str | None, internal: bool, name: str) -> None:
    from dockyard import errors
    body: dict[str, Any] = {"Name": name, "Driver": "bridge", "Internal": internal}
    if subnet:
        body["IPAM"] = {"Config": [{"Subnet": subnet}]}
    try:
        click.echo(client_of(obj).json("POST", "/networks/create", None, body)["Id"])
    except errors.DockyardError as e:
        fail(e)


@network.command(name="rm")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def network_rm(obj: dict[str, Any], names: tuple[str, ...]) -> None:
    from dockyard import errors
    for n in names:
        try:
            client_of(obj).request("DELETE", f"/networks/{n}").read()
            click.echo(n)
        except errors.DockyardError as e:
            fail(e)


@click.group()
def volume() -> None:
    """Manage volumes."""


@volume.command(name="ls")
@click.pass_obj
def volume_ls(obj: dict[str, Any]) -> None:
    from dockyard import errors
    try:
        rows = client_of(obj).json("GET", "/volumes").get("Volumes") or []
    except errors.DockyardError as e:
        fail(e)
    click.echo(f"{'DRIVER':<10}VOLUME NAME")
    for v in rows:
        click.echo(f"{v['Driver']:<10}{v['Name']}")


@volume.command(name="create")
@click.argument("name", required=False)
@click.pass_obj
def volume_create(obj: dict[str, Any], name: str | None) -> None:
    from dockyard import errors
    try:
        click.echo(client_of(obj).json("POST", "/volumes/create", None, {"Name": name or ""})["Name"])
    except errors.DockyardError as e:
        fail(e)


@volume.command(name="rm")
@click.option("-f", "--force", is_flag=True)
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def volume_rm(obj: dict[str, Any], force: bool, names: tuple[str, ...]) -> None:
    from dockyard import errors
    for n in names:
        try:
            client_of(obj).request("DELETE", f"/volumes/{n}", {"force": force}).read()
            click.echo(n)
        except errors.DockyardError as e:
            fail(e)


COMMANDS = [build, pull, push, network, volume]
