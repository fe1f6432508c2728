"""Image verbs: images, import, rmi; and system verbs: version, info."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from dockyard.cli.common import client_of, fail


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.3g}{unit}" if unit != "B" else f"{n}B"
        n /= 1000  # type: ignore[assignment]
    return str(n)


@click.command()
@click.option("-q", "--quiet", is_flag=True)
@click.pass_obj
def images(obj: dict[str, Any], quiet: bool) -> None:
    """List images."""
    from dockyard import errors
    try:
        rows = client_of(obj).images()
    except errors.DockyardError as e:
        fail(e)
    if quiet:
        for r in rows:
            click.echo(r["Id"].split(":")[1][:12])
        return
    click.echo(f"{'REPOSITORY':<30}{'TAG':<15}{'IMAGE ID':<15}SIZE")
    for r in rows:
        for t in r["RepoTags"] or ["<none>:<none>"]:
            repo, _, tag = t.rpartition(":")
            click.echo(f"{repo:<30}{tag:<15}{r['Id'].split(':')[1][:12]:<15}{_size(r['Size'])}")


@click.command(name="import")
@click.option("-c", "--change", multiple=True)
@click.option("-m", "--message", default="")
@click.argument("file")
@click.argument("reference", required=False)
@click.pass_obj
def import_(obj: dict[str, Any], change: tuple[str, ...], message: str, file: str, reference: str | None) -> None:
    """Import the contents from a tarball to create a filesystem image."""
    from dockyard import errors
    try:
        if file == "-":
            image_id = client_of(obj).import_image(sys.stdin.buffer, reference, list(change), message)
        else:
            with open(file, "rb") as f:
                image_id = client_of(obj).import_image(f, reference, list(change), message)
    except OSError as e:
        fail(e)
    except errors.DockyardError as e:
        fail(e)
    click.echo(image_id)


@click.command()
@click.option("-f", "--force", is_flag=True)
@click.argument("refs", nargs=-1, required=True)
@click.pass_obj
def rmi(obj: dict[str, Any], force: bool, refs: tuple[str, ...]) -> None:
    """Remove one or more images."""
    from dockyard import errors
    failed = False
    for r in refs:
        try:
            for item in client_of(obj).image_remove(r, force):
                for k, v in item.items():
                    click.echo(f"{k}: {v}")
        except errors.DockyardError as e:
            click.echo(f"Error response from daemon: {e}", err=True)
            failed = True
    if failed:
        sys.exit(1)


@click.command()
@click.pass_obj
def version(obj: dict[str, Any]) -> None:
    """Show the Dockyard version information."""
    from dockyard import errors
    try:
        v = client_of(obj).json("GET", "/version")
    except errors.DockyardError as e:
        fail(e)
    click.echo(f"Server: Dockyard {v['Version']} (API {v['ApiVersion']}, min {v['MinAPIVersion']}), "
               f"{v['Os']}/{v['Arch']}, kernel {v['KernelVersion']}")


@click.command()
@click.pass_obj
def info(obj: dict[str, Any]) -> None:
    """Display system-wide information."""
    from dockyard import errors
    try:
        click.echo(json.dumps(client_of(obj).json("GET", "/info"), indent=2))
    except errors.DockyardError as e:
        fail(e)


COMMANDS = [images, import_, rmi, version, info]
