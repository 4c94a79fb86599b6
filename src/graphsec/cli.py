"""The ``graphsec`` command: parse arguments, build settings, call. No logic of its own."""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime, timedelta

import click

from graphsec.auth.keys import load_or_create
from graphsec.auth.tokens import LocalIssuer
from graphsec.config import Settings, SettingsError
from graphsec.storage import migrate


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
@click.option("--pool-size", type=int, default=None,
              help="PostgreSQL connections per worker (default 10; GRAPHSEC_DB_POOL_SIZE).")
@click.option("--demo", is_flag=True,
              help="Load a small sample tenant first and print a token for it.")
def serve(host: str | None, port: int | None, database_url: str | None,
          workers: int | None, pool_size: int | None, demo: bool) -> None:
    """Run the server (granian, ASGI)."""
    from granian import Granian
    from granian.constants import Interfaces

    settings = _settings(host=host, port=port, database_url=database_url, workers=workers,
                         pool_size=pool_size)
    os.environ.update(settings.environ())
    load_or_create(settings.home)  # one key for every worker, created before they start
    _prepare_database(settings)
    if demo:
        _demo(settings)
    where = settings.sqlite_path() if settings.backend == "sqlite" else _redacted(settings)
    click.echo(f"graphsec: http://{settings.host}:{settings.port}/v1.0 and /beta, "
               f"data in {where}", err=True)
    Granian(
        target="graphsec.app:app_from_env",
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        log_access=False,
    ).serve()


def _demo(settings: Settings) -> None:
    """Seed one sample tenant (30 days up to today) and print a token and a first request."""
    from graphsec.seeding import SeedPlan
    from graphsec.seeding import seed as run_seed

    plan = SeedPlan(tenants=1, days=30, controls=20, users=10, seed=2026,
                    end=datetime.now(UTC).date() - timedelta(days=1))
    report = run_seed(settings.database_url, plan, workers=1)
    token = LocalIssuer(load_or_create(settings.home)).mint(
        report.first_tenant, ["SecurityEvents.ReadWrite.All"], expires_in=86400,
        identity="demo.admin@graphsec.example")
    base = f"http://{settings.host}:{settings.port}"
    click.echo(f"""
graphsec demo: tenant {report.first_tenant} has {report.secure_scores} daily secureScores, \
{report.control_profiles} control profiles and {report.user_profiles} user security profiles.
A token for it (SecurityEvents.ReadWrite.All, valid 24 h):

export TOKEN={token}
curl -H "Authorization: Bearer $TOKEN" '{base}/v1.0/security/secureScores?$top=1'
""")


def _redacted(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.database_url).render_as_string(hide_password=True)


def _prepare_database(settings: Settings) -> None:
    """SQLite upgrades itself; a PostgreSQL schema that is behind stops the server."""
    try:
        revision = migrate.current(settings.database_url)
    except Exception as exc:
        raise click.ClickException(f"cannot reach the database {_redacted(settings)}: {exc}") from None
    if revision == migrate.head():
        return
    if settings.backend == "sqlite":
        settings.sqlite_path().parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        migrate.upgrade(settings.database_url)
        return
    raise click.ClickException(
        f"the database schema is at revision {revision or '(none)'}; this graphsec needs "
        f"{migrate.head()}. Run: graphsec db upgrade --database {_redacted(settings)}"
    )


@main.group()
def db() -> None:
    """Database schema migrations."""


_database_option = click.option("--database", "database_url", default=None,
                                 help="Database URL (default: GRAPHSEC_DATABASE_URL, else the "
                                      "SQLite file in GRAPHSEC_HOME).")


@db.command()
@_database_option
def upgrade(database_url: str | None) -> None:
    """Bring the schema to the newest revision (creates it in an empty database)."""
    settings = _settings(database_url=database_url)
    if settings.backend == "sqlite":
        settings.sqlite_path().parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    migrate.upgrade(settings.database_url)
    click.echo(f"{_redacted(settings)}: at revision {migrate.head()}")


@db.command()
@_database_option
def current(database_url: str | None) -> None:
    """Print the schema revision of the database, and whether it is the newest."""
    settings = _settings(database_url=database_url)
    try:
        revision = migrate.current(settings.database_url)
    except Exception as exc:
        raise click.ClickException(f"cannot read {_redacted(settings)}: {exc}") from None
    state = "(head)" if revision == migrate.head() else f"(behind; head is {migrate.head()})"
    click.echo(f"{revision or '(none)'} {state}")


@main.command()
@click.option("--tenants", type=click.IntRange(1, 1_000_000), default=10, show_default=True)
@click.option("--days", type=click.IntRange(1, 100_000), default=90, show_default=True,
              help="Daily secureScores per tenant.")
@click.option("--controls", type=click.IntRange(1, 500), default=20, show_default=True,
              help="Control profiles per tenant (and controlScores per score).")
@click.option("--users", type=click.IntRange(0, 1_000_000), default=20, show_default=True,
              help="User security profiles per tenant.")
@click.option("--seed", "seed_value", type=int, default=1, show_default=True,
              help="Same seed, same data.")
@click.option("--end-date", type=click.DateTime(["%Y-%m-%d"]), default="2026-11-01",
              show_default=True, help="Date of the newest daily score.")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Generator processes (default: the number of cores).")
@_database_option
def seed(tenants: int, days: int, controls: int, users: int, seed_value: int,
         end_date: datetime, workers: int | None, database_url: str | None) -> None:
    """Fill the store with realistic, deterministic sample data."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from graphsec.seeding import SeedPlan
    from graphsec.seeding import seed as run_seed

    settings = _settings(database_url=database_url)
    _prepare_database(settings)
    plan = SeedPlan(tenants, days, controls, users, seed_value, end_date.date())
    columns = (TextColumn("seeding"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]} entities/s"), TimeRemainingColumn())
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task("seed", total=plan.total, rate="-")
        started = time.perf_counter()
        done = 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            rate = f"{done / max(time.perf_counter() - started, 1e-6):,.0f}"
            progress.update(task, advance=n, rate=rate)

        report = run_seed(settings.database_url, plan, workers, advance)
    click.echo(f"seeded {report.secure_scores} secureScores, {report.control_profiles} control "
               f"profiles, {report.user_profiles} user security profiles for {tenants} tenant(s) "
               f"in {report.seconds:.1f} s ({_redacted(settings)})")
    click.echo(f"first tenant: {report.first_tenant}")


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
