"""`dockyard`: docker's verbs and flags, talking to dockyardd over the Engine API.

Thin: parse, call the client, format. Heavy imports (aiohttp...) stay out of start-up:
each command imports what it needs inside its function.
"""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-H", "--host", envvar=["DOCKYARD_HOST", "DOCKER_HOST"], default=None,
              help="Daemon socket to connect to (unix:///path).")
@click.pass_context
def cli(ctx: click.Context, host: str | None) -> None:
    """Dockyard: build, ship and run containers."""
    ctx.obj = {"host": host}


def _add_registry() -> None:
    # The registry server is its own process and package; its commands live there.
    try:
        from dockyard.registry.cli import registry
    except ImportError:
        return
    cli.add_command(registry)


def _add_engine() -> None:
    from dockyard.cli import containers, images, more
    for cmd in containers.COMMANDS + images.COMMANDS + more.COMMANDS:
        cli.add_command(cmd)


def main() -> None:
    _add_engine()
    _add_registry()
    cli(prog_name="dockyard")


if __name__ == "__main__":
    main()
