"""The ``graphsec`` command: parse arguments, build settings, call. No logic of its own."""

from __future__ import annotations

import asyncio
import os
import sys

import click

from graphsec.auth.keys import load_or_create
from graphsec.auth.tokens import LocalIssuer
from graphsec.config import Settings, SettingsError
from graphsec.storage.sqlite import SQLiteStore


def _settings(**flags: object) -> Settings:
    try:
        return Settings.from_env(None, **flags)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None


@click.group()
@click.version_option(package_name="graphsec")
def main() -> None:
    """graphsec: a self-hostable Microsoft Graph Security API server."""


@main.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default 8000).")
@click.option("--database", "database_url", default=None,
              help="Database URL (default sqlite:///$GRAPHSEC_HOME/graphsec.db).")
@click.option("--workers", type=int, default=None, help="Worker processes (default 1).")
def serve(host: str | None, port: int | None, database_url: str | None,
          workers: int | None) -> None:
    """Run the server (granian, ASGI)."""
    from granian import Granian
    from granian.constants import Interfaces

    settings = _settings(host=host, port=port, database_url=database_url, workers=workers)
    os.environ.update(settings.environ())
    load_or_create(settings.home)  # one key for every worker, created before they start
    store = SQLiteStore(settings.sqlite_path())
    asyncio.run(store.open())  # schema in place before workers race for it
    asyncio.run(store.close())
    click.echo(f"graphsec: http://{settings.host}:{settings.port}/v1.0 and /beta, "
               f"data in {settings.sqlite_path()}", err=True)
    Granian(
        target="graphsec.app:app_from_env",
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        log_access=False,
    ).serve()


@main.command()
@click.option("--tenant", required=True, help="The tenant id (tid claim).")
@click.option("--role", "roles", multiple=True,
              help="Application permission for the roles claim (repeatable).")
@click.option("--scope", "scopes", multiple=True,
              help="Delegated permission for the scp claim (repeatable).")
@click.option("--expires-in", type=click.IntRange(1, 10 * 365 * 86400), default=3600,
              show_default=True, help="Lifetime in seconds.")
@click.option("--identity", default=None,
              help="User principal name (upn claim), recorded as updatedBy on changes.")
def token(tenant: str, roles: tuple[str, ...], scopes: tuple[str, ...], expires_in: int,
          identity: str | None) -> None:
    """Print a bearer token signed by this server's development issuer."""
    if not tenant.strip():
        raise click.UsageError("--tenant cannot be empty")
    settings = _settings()
    issuer = LocalIssuer(load_or_create(settings.home))
    if not roles and not scopes:
        click.echo("graphsec: warning: the token carries no permission; every request will get "
                   "403 (add --role SecurityEvents.ReadWrite.All)", err=True)
    click.echo(issuer.mint(tenant, roles, scopes, expires_in, identity))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
