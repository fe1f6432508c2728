"""``dockyard registry serve|gc``: a click group the ``dockyard`` CLI mounts as a subcommand.

Also runnable as ``python -m dockyard.registry``. Bad flags or config exit 2 with a message
naming the field; nothing is created before the configuration is valid.
"""

from __future__ import annotations

from pathlib import Path

import click

from dockyard.errors import InvalidArgument


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def registry() -> None:
    """Run an OCI distribution registry (a separate process with its own storage)."""


@registry.command()
@click.option("--addr", default=None, help="HOST:PORT to listen on (default 127.0.0.1:5000; port 0 = any).")
@click.option("--root", type=click.Path(path_type=Path), default=None, help="Storage directory.")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
              help="YAML or JSON configuration file (flags override it).")
@click.option("--htpasswd", type=click.Path(path_type=Path), default=None,
              help="bcrypt htpasswd file: enables authentication (basic unless --auth token).")
@click.option("--auth", type=click.Choice(["basic", "token"]), default=None,
              help="Authentication scheme when --htpasswd is given.")
@click.option("--token-realm", default=None, help="Token endpoint URL (default: this server's /token).")
@click.option("--token-service", default=None, help="Token service name (default dockyard-registry).")
@click.option("--token-secret", default=None, help="HMAC key for tokens (default: random per start).")
@click.option("--tls-cert", type=click.Path(path_type=Path), default=None)
@click.option("--tls-key", type=click.Path(path_type=Path), default=None)
@click.option("--proxy-remote-url", default=None, help="Act as a pull-through cache of this registry.")
@click.option("--proxy-username", default=None)
@click.option("--proxy-password", default=None)
def serve(config_file: Path | None, **flags: object) -> None:
    """Serve the registry API until SIGINT/SIGTERM."""
    from dockyard.registry.config import build_config, load_file
    from dockyard.registry.server import run

    try:
        data = load_file(config_file) if config_file else {}
        cfg = build_config(data, dict(flags))
    except InvalidArgument as e:
        raise click.UsageError(str(e)) from None
    run(cfg)


@registry.command()
@click.option("--root", type=click.Path(path_type=Path, exists=True, file_okay=False),
              required=True, help="Storage directory of the registry.")
@click.option("--dry-run", is_flag=True, help="Report what would be deleted, delete nothing.")
@click.option("--delete-untagged", is_flag=True, help="Also delete manifests no tag reaches.")
@click.option("--grace-period", type=float, default=3600.0, show_default=True,
              help="Seconds: blobs written more recently than this are kept.")
def gc(root: Path, dry_run: bool, delete_untagged: bool, grace_period: float) -> None:
    """Delete blobs that no manifest references (safe while pushes are in progress)."""
    from dockyard.registry.gc import collect, report

    res = collect(root, dry_run=dry_run, delete_untagged=delete_untagged,
                  grace_seconds=grace_period)
    click.echo(report(res, dry_run))
