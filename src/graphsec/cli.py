"""The ``graphsec`` command: parse arguments, build settings, call. No logic of its own."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import urlsplit

import click

from graphsec import ports
from graphsec.auth import registrations as apps
from graphsec.auth import tls
from graphsec.auth.keys import SigningKey, UnsafeKeyFile, load_or_create, secure_home
from graphsec.auth.principal import TENANT_EXAMPLE, canonical_tenant
from graphsec.auth.tokens import LocalIssuer
from graphsec.config import ConfigFileError, Settings, SettingsError
from graphsec.storage import migrate


class Failure(click.ClickException):
    """A mistake the operator can fix (or a refusal of the system), told in one line on stderr,
    ``graphsec: …``, with exit status 1: never a traceback."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"graphsec: {self.format_message()}", err=True)


class ArgumentFailure(Failure):
    """A wrong argument, told in one line; exit status 2, as for click's usage errors."""

    exit_code = 2


def _settings(**flags: object) -> Settings:
    try:
        return Settings.from_env(None, **flags)
    except ConfigFileError as exc:
        raise Failure(str(exc)) from None
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None


def _key(settings: Settings) -> SigningKey:
    """The signing key (created on first use), after making ``GRAPHSEC_HOME`` owner-only."""
    try:
        if secure_home(settings.home):
            click.echo(f"graphsec: {settings.home} (GRAPHSEC_HOME) was open to group or others; "
                       "changed its mode to 0700, as it holds the signing key", err=True)
        return load_or_create(settings.home)
    except UnsafeKeyFile as exc:
        raise Failure(str(exc)) from None
    except OSError as exc:
        raise Failure(f"cannot use GRAPHSEC_HOME {settings.home}: {exc.strerror} "
                      f"({exc.filename})") from None


def _operator_key(settings: Settings) -> str:
    """The operator key (``auth/operator.py``), created on first use."""
    from graphsec.auth.operator import load_or_create_operator_key

    try:
        return load_or_create_operator_key(settings.home)
    except (UnsafeKeyFile, ValueError) as exc:
        raise Failure(str(exc)) from None


@click.group()
@click.version_option(package_name="graphsec")
def main() -> None:
    """graphsec: a self-hostable Microsoft Graph Security API server."""


@main.command()
@click.option("--host", default=None,
              help="Address to listen on (default 127.0.0.1; GRAPHSEC_HOST). With 0.0.0.0 or "
                   ":: also give --allowed-host or --public-url.")
@click.option("--port", type=int, default=None,
              help="Port to listen on (default 8000; GRAPHSEC_PORT).")
@click.option("--database", "database_url", default=None,
              help="Database URL (default: GRAPHSEC_DATABASE_URL, else "
                   "sqlite:///$GRAPHSEC_HOME/graphsec.db).")
@click.option("--workers", type=int, default=None, help="Worker processes (default 1).")
@click.option("--pool-size", type=int, default=None,
              help="PostgreSQL connections per worker (default 10; GRAPHSEC_DB_POOL_SIZE).")
@click.option("--public-url", default=None, metavar="URL",
              help="Build links (nextLink, Location) from this origin, e.g. "
                   "https://graph.example.com, whatever Host clients send "
                   "(GRAPHSEC_PUBLIC_URL).")
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="NAME",
              help="A Host header name to accept, any port (repeatable; "
                   "GRAPHSEC_ALLOWED_HOSTS, comma-separated). Loopback names and the --host "
                   "address are always accepted; other Hosts get 400. With --host 0.0.0.0 or "
                   ":: name the hosts clients use here, or give --public-url.")
@click.option("--upgrade", "upgrade_schema", is_flag=True,
              help="Bring a PostgreSQL schema that is behind to the newest revision first, as "
                   "graphsec db upgrade does (SQLite files are always upgraded).")
@click.option("--demo", is_flag=True,
              help="Load a small sample tenant first and print a token for it.")
@click.option("--tls", "use_tls", is_flag=True,
              help="Serve HTTPS (GRAPHSEC_TLS=1; default port 8443): needed by MSAL and "
                   "azure-identity for the token endpoint. Without --certfile a local CA in "
                   "GRAPHSEC_HOME signs a certificate (graphsec ca prints its path).")
@click.option("--certfile", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --tls: the server's certificate chain, PEM (GRAPHSEC_TLS_CERTFILE).")
@click.option("--keyfile", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --tls: the certificate's private key, PEM (GRAPHSEC_TLS_KEYFILE).")
@click.option("--trust-issuer", "trust_issuers", multiple=True, metavar="URL",
              help="Also accept RS256 tokens of this OIDC issuer (its exact 'iss'; keys from "
                   "URL/.well-known/openid-configuration's jwks_uri; repeatable; "
                   "GRAPHSEC_TRUST_ISSUERS).")
@click.option("--audience", "audiences", multiple=True, metavar="AUD",
              help="An 'aud' accepted from trusted issuers (repeatable; GRAPHSEC_AUDIENCES; "
                   "default: Microsoft Graph's).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, metavar="FILE",
              help="Throttling, chaos and providers from this TOML file (GRAPHSEC_CONFIG; "
                   "docs/configuration.md); a bad file stops serve with one line naming the key.")
@click.option("--throttle", is_flag=True,
              help="Enforce Graph's throttling limits for /security, per application and "
                   "tenant, across workers and instances (GRAPHSEC_THROTTLE=1).")
@click.option("--metrics", is_flag=True, default=None,
              help="Serve Prometheus metrics on /metrics, for the operator key "
                   "(GRAPHSEC_METRICS=1; docs/operations.md).")
@click.option("--metrics-public", is_flag=True, default=None,
              help="With --metrics: /metrics without a credential (GRAPHSEC_METRICS_PUBLIC=1).")
@click.option("--log-format", type=click.Choice(["text", "json", "off"]), default=None,
              help="The access log on stderr (GRAPHSEC_LOG_FORMAT; default text on a "
                   "terminal, else off; json for a log shipper).")
def serve(host: str | None, port: int | None, database_url: str | None,
          workers: int | None, pool_size: int | None, public_url: str | None,
          allowed_hosts: tuple[str, ...], upgrade_schema: bool, demo: bool, use_tls: bool,
          certfile: Path | None, keyfile: Path | None, trust_issuers: tuple[str, ...],
          audiences: tuple[str, ...], config_file: Path | None, throttle: bool,
          metrics: bool | None, metrics_public: bool | None, log_format: str | None) -> None:
    """Run the server (granian, ASGI).

    \b
    Environment:
      GRAPHSEC_HOME          where the SQLite file and the signing key live (default
                             ./.graphsec; the key is created there when missing)
      GRAPHSEC_DATABASE_URL  the database, when --database is not given
    The README's configuration table lists the other GRAPHSEC_* settings.
    """
    from granian import Granian
    from granian.constants import Interfaces

    settings = _settings(host=host, port=port, database_url=database_url, workers=workers,
                         pool_size=pool_size, public_url=public_url,
                         allowed_hosts=allowed_hosts or None, tls=use_tls or None,
                         certfile=certfile, keyfile=keyfile,
                         trust_issuers=trust_issuers or None, audiences=audiences or None,
                         config_file=config_file, throttle=throttle or None, metrics=metrics or None,
                         metrics_public=metrics_public or None, log_format=log_format)
    os.environ.update(settings.environ())
    _metrics_folder(settings)
    _listen_check(settings)  # before any work: a second server on the port stops at once
    _key(settings)  # one key for every worker, created before they start
    _operator_key(settings)  # the admin API's credential, likewise
    _prepare_database(settings, upgrade_schema)
    if demo:
        _demo(settings)
    where = settings.sqlite_path() if settings.backend == "sqlite" else _redacted(settings)
    certificate = _certificate(settings)
    scheme = "https" if settings.tls else "http"
    click.echo(f"graphsec: {scheme}://{settings.host}:{settings.port}/v1.0 and /beta, "
               f"data in {where}", err=True)
    if settings.tls:
        click.echo(f"graphsec: token endpoint {settings.authority}/{{tenant}}/oauth2/v2.0/token"
                   f"; certificate {certificate[0]}", err=True)
    server = Granian(
        target="graphsec.app:app_from_env",
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        log_access=False,
        ssl_cert=certificate[0] if settings.tls else None,
        ssl_key=certificate[1] if settings.tls else None,
    )
    try:
        server.serve()
    except (OSError, RuntimeError) as exc:  # taken since the check: granian's bind fails
        if not ports.is_bind_failure(exc):
            raise
        raise Failure(ports.bind_failure(exc, settings.host, settings.port)) from None


def _certificate(settings: Settings) -> tuple[Path, Path] | tuple[None, None]:
    """The TLS certificate and key files ``serve`` uses: the given ones, else a leaf of the
    local CA for the loopback names, the bind address and the names links may use."""
    if not settings.tls:
        return None, None
    if settings.certfile is not None and settings.keyfile is not None:
        for path in (settings.certfile, settings.keyfile):
            if not path.is_file():
                raise Failure(f"{path}: no such file (--certfile/--keyfile)")
        return settings.certfile, settings.keyfile
    public = urlsplit(settings.public_url).hostname if settings.public_url else None
    try:
        return tls.leaf_files(settings.home, tls.server_names(settings.host,
                                                              *settings.allowed_hosts, public))
    except UnsafeKeyFile as exc:
        raise Failure(str(exc)) from None


def _metrics_folder(settings: Settings) -> None:
    """With metrics on, every worker writes its values in one fresh folder (prometheus-client's
    multiprocess mode): named before the workers start, as it must be."""
    if settings.metrics:
        from graphsec.observability.multiprocess import MULTIPROCESS_ENV, prepare_multiprocess_dir

        os.environ[MULTIPROCESS_ENV] = str(prepare_multiprocess_dir(settings.home, os.getpid()))


def _listen_check(settings: Settings) -> None:
    try:
        ports.check_free(settings.host, settings.port)
    except ports.AddressInUse as exc:
        raise Failure(str(exc)) from None


def _demo(settings: Settings) -> None:
    """Seed one sample tenant (30 days up to today) and print a token, a first request and
    the dashboard's link."""
    from graphsec.cli_ui import ui_link
    from graphsec.seeding import SeedPlan
    from graphsec.seeding import seed as run_seed

    plan = SeedPlan(tenants=1, days=30, controls=20, users=10, seed=2026,
                    end=datetime.now(UTC).date() - timedelta(days=1))
    report = run_seed(settings.database_url, plan, workers=1)
    token = LocalIssuer(_key(settings)).mint(
        report.first_tenant, ["SecurityEvents.ReadWrite.All"], expires_in=86400,
        identity="demo.admin@graphsec.example")
    base = f"{'https' if settings.tls else 'http'}://{settings.host}:{settings.port}"
    click.echo(f"""
graphsec demo: tenant {report.first_tenant} has {report.secure_scores} daily secureScores, \
{report.control_profiles} control profiles and {report.user_profiles} user security profiles.
A token for it (SecurityEvents.ReadWrite.All, valid 24 h):

export TOKEN={token}
curl -H "Authorization: Bearer $TOKEN" '{base}/v1.0/security/secureScores?$top=1'

The dashboard (a ReadWrite link, valid 8 h; graphsec ui --tenant … makes others):
{ui_link(settings, report.first_tenant, write=True, identity="demo.admin@graphsec.example")}
""")


def _redacted(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.database_url).render_as_string(hide_password=True)


def _prepare_database(settings: Settings, upgrade: bool = False) -> None:
    """SQLite upgrades itself, and so does PostgreSQL with ``upgrade``; otherwise a PostgreSQL
    schema that is behind stops the server, saying which command brings it up to date."""
    with _database_failures():
        revision = migrate.current(settings.database_url)
        if revision == migrate.head():
            return
        if settings.backend == "sqlite" or upgrade:
            migrate.upgrade(settings.database_url)
            return
    raise Failure(
        f"the database schema is at revision {revision or '(none)'}; this graphsec needs "
        f"{migrate.head()}. Run: graphsec db upgrade --database {_redacted(settings)} "
        "(or start with graphsec serve --upgrade)"
    )


@contextmanager
def _database_failures() -> Iterator[None]:
    """A database that cannot be reached or written ends the command with its one line."""
    try:
        yield
    except migrate.DatabaseError as exc:
        raise Failure(str(exc)) from None


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
    with _database_failures():
        migrate.upgrade(settings.database_url)
    click.echo(f"{_redacted(settings)}: at revision {migrate.head()}")


@db.command()
@_database_option
def current(database_url: str | None) -> None:
    """Print the schema revision of the database, and whether it is the newest."""
    settings = _settings(database_url=database_url)
    with _database_failures():
        revision = migrate.current(settings.database_url)
    state = "(head)" if revision == migrate.head() else f"(behind; head is {migrate.head()})"
    click.echo(f"{revision or '(none)'} {state}")


@main.command()
@click.option("--tenants", type=click.IntRange(1, 1_000_000), default=10, show_default=True,
              help="Tenants to generate (their ids follow from --seed; the first is printed).")
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
    click.echo(f"a token for it: graphsec token --tenant {report.first_tenant} "
               f"--role SecurityEvents.ReadWrite.All")


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
    canonical = canonical_tenant(tenant.strip())
    if canonical is None:
        raise ArgumentFailure(f"--tenant {tenant!r} is not a tenant id: tenant ids are GUIDs, "
                              f"e.g. --tenant {TENANT_EXAMPLE}")
    settings = _settings()
    issuer = LocalIssuer(_key(settings))
    if not roles and not scopes:
        click.echo("graphsec: warning: the token carries no permission; every request will get "
                   "403 (add --role SecurityEvents.ReadWrite.All)", err=True)
    click.echo(issuer.mint(canonical, roles, scopes, expires_in, identity))


@main.command()
def ca() -> None:
    """Print the path of the local CA's certificate (made on first use), for clients'
    SSL_CERT_FILE / REQUESTS_CA_BUNDLE: export SSL_CERT_FILE=$(graphsec ca)."""
    settings = _settings()
    _key(settings)  # GRAPHSEC_HOME made owner-only first, as for serve
    try:
        click.echo(tls.load_or_create_ca(settings.home).path)
    except UnsafeKeyFile as exc:
        raise Failure(str(exc)) from None


T = TypeVar("T")


def _on_store(settings: Settings, work: Callable[[apps.RegistrationStore], Awaitable[T]]) -> T:
    """Run ``work`` on the configured database's store, opened for it and closed after."""
    from graphsec.app import create_store

    _prepare_database(settings)

    async def run() -> T:
        store = create_store(settings)
        await store.open()
        try:
            return await work(store)
        finally:
            await store.close()

    with _database_failures():
        return asyncio.run(run())


@main.group(name="app")
def app_group() -> None:
    """App registrations for the token endpoint (kept in the database)."""


@app_group.command(name="create")
@click.option("--tenant", required=True, help="The tenant id (a GUID).")
@click.option("--name", required=True, help="The app's display name (app_displayname).")
@click.option("--role", "roles", multiple=True,
              help="An application permission its tokens carry in 'roles' (repeatable), e.g. "
                   "SecurityEvents.Read.All.")
@click.option("--certificate", "certificates", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A PEM certificate whose key signs the app's client assertions "
                   "(CertificateCredential); then no secret is made (repeatable).")
@_database_option
def app_create(tenant: str, name: str, roles: tuple[str, ...], certificates: tuple[Path, ...],
               database_url: str | None) -> None:
    """Register an app; prints tenantId, clientId and clientSecret (shown once) as JSON."""
    settings = _settings(database_url=database_url)
    try:
        tenant = apps.tenant_id(tenant)
        pems = [path.read_text() for path in certificates]
        for pem in pems:
            apps.certificate_pems(pem)  # refused before anything is stored
    except (apps.RegistrationError, OSError, UnicodeDecodeError) as exc:
        raise ArgumentFailure(str(exc)) from None
    if not roles:
        click.echo("graphsec: warning: the app has no permission; its tokens will get 403 "
                   "(add --role SecurityEvents.Read.All)", err=True)
    created = _on_store(settings, lambda store: apps.register(store, tenant, name, roles, pems))
    click.echo(json.dumps(created.as_json(), indent=2))


@app_group.command(name="list")
@click.option("--tenant", default=None, help="Only this tenant's apps.")
@_database_option
def app_list(tenant: str | None, database_url: str | None) -> None:
    """Print the registrations as JSON (never their secrets)."""
    settings = _settings(database_url=database_url)
    try:
        tid = None if tenant is None else apps.tenant_id(tenant)
    except apps.RegistrationError as exc:
        raise ArgumentFailure(str(exc)) from None
    found = _on_store(settings, lambda store: store.registrations(tid))
    click.echo(json.dumps([apps.describe(r) for r in found], indent=2))


@app_group.command(name="delete")
@click.option("--tenant", required=True, help="The app's tenant id.")
@click.argument("client_id")
@_database_option
def app_delete(tenant: str, client_id: str, database_url: str | None) -> None:
    """Delete a registration: it gets no new token (tokens issued stay valid until they
    expire, as in Entra ID)."""
    settings = _settings(database_url=database_url)
    try:
        tid = apps.tenant_id(tenant)
    except apps.RegistrationError as exc:
        raise ArgumentFailure(str(exc)) from None
    if not _on_store(settings, lambda store: store.delete_registration(tid, client_id.lower())):
        raise Failure(f"no app {client_id} in tenant {tid}")
    click.echo(f"deleted app {client_id.lower()} of tenant {tid}")


from graphsec.cli_ui import ui  # noqa: E402 (it uses this module's helpers, imported when run)

main.add_command(ui)

from graphsec.cli_admin import COMMANDS as ADMIN_COMMANDS  # noqa: E402 (it imports this module's helpers)

for command in ADMIN_COMMANDS:
    main.add_command(command)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
