"""``graphsec export``, ``import``, ``reset`` and ``operator-key``: a store's state, on the
database directly (``--database``, the default) or through a running server's admin API
(``--server URL``, with the operator key). docs/admin.md describes the NDJSON they read and
write."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import IO, Any
from urllib.parse import urlencode

import click

from graphsec.auth.keys import UnsafeKeyFile
from graphsec.auth.operator import OPERATOR_KEY_FILE, load_or_create_operator_key
from graphsec.config import Settings
from graphsec.errors import GraphError
from graphsec.resources.admin import tenant_of
from graphsec.resources.state import EXPORT_SEAL, Importer, Seal, export_lines, import_lines, line_cap
from graphsec.schema.security import ENTITY_SETS
from graphsec.storage.state import StateStore, open_state

CHUNK = 1 << 20


def _cli() -> ModuleType:
    """``graphsec.cli``, imported when first needed: it imports this module at its end (to add
    these commands), and ``python -m graphsec.cli`` runs it as ``__main__``, a second copy."""
    from graphsec import cli

    return cli


def _operator_key(settings: Settings, given: str | None) -> str:
    key = given or os.environ.get("GRAPHSEC_OPERATOR_KEY")
    if key:
        return key.strip()
    if not (settings.home / OPERATOR_KEY_FILE).exists():
        raise _cli().Failure(f"no operator key in {settings.home} (GRAPHSEC_HOME); give the server's "
                      "with --operator-key or GRAPHSEC_OPERATOR_KEY")
    try:
        return load_or_create_operator_key(settings.home)
    except (UnsafeKeyFile, ValueError) as exc:
        raise _cli().Failure(str(exc)) from None


def _tenant(tenant: str | None) -> str | None:
    if tenant is None:
        return None
    try:
        return tenant_of(tenant)
    except GraphError as exc:
        raise _cli().ArgumentFailure(f"--tenant: {exc}") from None


def _call(url: str, key: str, method: str = "GET", data: Any = None,
          content_type: str | None = None) -> Any:
    """The admin API's response to one request (the caller reads it); one-line failures."""
    if not url.startswith(("http://", "https://")):
        raise _cli().ArgumentFailure(f"--server {url!r}: give an http:// or https:// URL")
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (checked above)
    request.add_header("Authorization", f"Bearer {key}")
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        return urllib.request.urlopen(request)  # noqa: S310 (the operator's own --server URL)
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = exc.reason
        raise _cli().Failure(f"{url}: {exc.code} {message}") from None
    except urllib.error.URLError as exc:
        raise _cli().Failure(f"{url}: {exc.reason}") from None


def _on_state(settings: Settings, work: Callable[[StateStore], Any]) -> Any:
    """Run ``work`` on the database's state store, opened for it and closed after."""
    _cli()._prepare_database(settings)

    async def run() -> Any:
        state = open_state(settings.database_url, ENTITY_SETS)
        try:
            return await work(state)
        finally:
            await state.close()

    with _cli()._database_failures():
        try:
            return asyncio.run(run())
        except GraphError as exc:
            raise _cli().Failure(str(exc)) from None


_database = click.option("--database", "database_url", default=None,
                         help="Database URL (default: GRAPHSEC_DATABASE_URL, else the SQLite "
                              "file in GRAPHSEC_HOME).")
_server = click.option("--server", default=None, metavar="URL",
                       help="Go through this running server's admin API instead "
                            "(http://127.0.0.1:8000).")
_key_option = click.option("--operator-key", default=None,
                           help="With --server: its operator key (default: "
                                "GRAPHSEC_OPERATOR_KEY, else GRAPHSEC_HOME/operator.key).")


@click.command(name="operator-key")
def operator_key() -> None:
    """Print the operator key (made on first use), the credential of /_graphsec/: curl -H
    "Authorization: Bearer $(graphsec operator-key)" …"""
    settings = _cli()._settings()
    try:
        click.echo(load_or_create_operator_key(settings.home))
    except (UnsafeKeyFile, ValueError) as exc:
        raise _cli().Failure(str(exc)) from None


@click.command(name="export")
@click.option("--tenant", default=None, help="Only this tenant (default: every tenant).")
@_database
@_server
@_key_option
def export(tenant: str | None, database_url: str | None, server: str | None,
           operator_key: str | None) -> None:
    """Write the store's entities to stdout as NDJSON (docs/admin.md): graphsec export >
    state.ndjson."""
    tid = _tenant(tenant)
    settings = _cli()._settings(database_url=database_url)
    out = sys.stdout.buffer
    if server is not None:
        query = f"?{urlencode({'tenant': tid})}" if tid else ""
        with _call(f"{server.rstrip('/')}/_graphsec/export{query}",
                   _operator_key(settings, operator_key)) as response:
            while chunk := response.read(CHUNK):
                out.write(chunk)
        out.flush()
        return

    async def work(state: StateStore) -> None:
        async for chunk in export_lines(state, tid, _seal(settings)):
            out.write(chunk)
        out.flush()

    _on_state(settings, work)


@click.command(name="import")
@click.argument("file", type=click.File("rb"))
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Processes importing parts of FILE at once, on the database directly "
                   "(default: 1 on SQLite, the number of cores on PostgreSQL).")
@_database
@_server
@_key_option
def import_state(file: IO[bytes], workers: int | None, database_url: str | None,
                 server: str | None, operator_key: str | None) -> None:
    """Store the entities of an NDJSON export (FILE, or - for stdin), replacing those with the
    same tenant, entity set and id; a progress bar on a terminal."""
    settings = _cli()._settings(database_url=database_url)
    name = getattr(file, "name", None)  # stdin has "<stdin>", or none at all
    path = Path(name) if isinstance(name, str) and name != "<stdin>" else None
    if server is None and path is not None and path.is_file():
        _import_file(settings, path, workers, file)
        return
    with _Progress(file) as advance:
        def chunks() -> Iterator[bytes]:
            while chunk := file.read(CHUNK):
                advance(len(chunk))
                yield chunk

        if server is not None:
            with _call(f"{server.rstrip('/')}/_graphsec/import",
                       _operator_key(settings, operator_key), "POST", chunks(),
                       "application/x-ndjson") as response:
                imported = json.loads(response.read())["imported"]
        else:
            async def work(state: StateStore) -> int:
                importer = Importer(state, ENTITY_SETS, _limits(settings), _seal(settings))
                return await import_lines(importer, _async(chunks()), line_cap(importer.limits))

            imported = _on_state(settings, work)
    click.echo(f"imported {imported} entities", err=True)


@click.command(name="reset")
@click.option("--tenant", default=None, help="Only this tenant (default: every tenant).")
@click.option("--apps", "with_apps", is_flag=True, help="Delete the app registrations too.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_database
@_server
@_key_option
def reset(tenant: str | None, with_apps: bool, yes: bool, database_url: str | None,
          server: str | None, operator_key: str | None) -> None:
    """Delete every entity (of one tenant, or of all), with its history."""
    tid = _tenant(tenant)
    settings = _cli()._settings(database_url=database_url)
    if not yes:
        if not sys.stdin.isatty():
            raise _cli().Failure("reset deletes data: confirm with --yes")
        click.confirm(f"Delete every entity of {tid or 'every tenant'}"
                      f"{' and the app registrations' if with_apps else ''}?", abort=True)
    if server is not None:
        query = {**({"tenant": tid} if tid else {}), **({"apps": "true"} if with_apps else {})}
        url = f"{server.rstrip('/')}/_graphsec/reset" + (f"?{urlencode(query)}" if query else "")
        with _call(url, _operator_key(settings, operator_key), "POST", b"") as response:
            deleted = json.loads(response.read())["deleted"]
    else:
        deleted = _on_state(settings, lambda state: state.reset(tid, with_apps))
    click.echo("deleted " + ", ".join(f"{n} {name}" for name, n in deleted.items()))


def _import_file(settings: Settings, path: Path, workers: int | None, file: IO[bytes]) -> None:
    """A regular file on the database directly: in parts, a process each (importing.py)."""
    from graphsec.importing import import_file

    cli = _cli()
    cli._prepare_database(settings)
    with _Progress(file) as advance, cli._database_failures():
        try:
            imported = import_file(path, settings.database_url, _limits(settings),
                                   _cli()._key(settings).derive_secret(EXPORT_SEAL), workers,
                                   advance)
        except GraphError as exc:
            raise cli.Failure(str(exc)) from None
    click.echo(f"imported {imported} entities", err=True)


def _seal(settings: Settings) -> Seal:
    """The seal of this home's exports (``resources/state.py``)."""
    return Seal(_cli()._key(settings).derive_secret(EXPORT_SEAL))


def _limits(settings: Settings) -> Any:
    from graphsec.app import limits

    return limits(settings)


async def _async(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


class _Progress:
    """A rich progress bar of the bytes of ``file`` read, on stderr when it is a terminal."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self.bar: Any = None

    def __enter__(self) -> Callable[[int], None]:
        if not sys.stderr.isatty():
            return lambda n: None
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

        try:
            total: int | None = os.fstat(self.file.fileno()).st_size or None
        except (OSError, ValueError):
            total = None
        self.bar = Progress(TextColumn("importing"), BarColumn(), DownloadColumn(),
                            TimeRemainingColumn(), console=Console(stderr=True))
        self.bar.__enter__()
        task = self.bar.add_task("import", total=total)
        return lambda n: self.bar.update(task, advance=n)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


COMMANDS: tuple[click.Command, ...] = (operator_key, export, import_state, reset)
"""What ``graphsec`` adds from here (cli.py)."""
