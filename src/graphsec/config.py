"""Settings, from command-line flags and ``GRAPHSEC_*`` variables, validated once.

There is no global settings instance: ``Settings.from_env()`` builds one where it is needed
(the CLI, and each server worker process from the environment the CLI prepared).
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlparse, urlsplit

from graphsec.pressure.config import Behaviour, ConfigError
from graphsec.pressure.config import load as load_behaviour
from graphsec.pressure.config import parse as parse_behaviour
from graphsec.schema.limits import (
    CONTROL_HISTORY_ENTRIES,
    MAX_COLLECTION_ITEMS,
    MAX_DEPTH,
    MAX_DOCUMENT_BYTES,
)

DEFAULT_MAX_BODY = 4 * 1024 * 1024
DEFAULT_STATEMENT_TIMEOUT_MS = 10_000
DEFAULT_BODY_TIMEOUT = 30
DEFAULT_BATCH_TIMEOUT = 30
PG_READS = ("prepared", "batch")
"""How a PostgreSQL worker reads by id (``storage/postgres/reads/__init__.py``)."""
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
TLS_PORT = 8443
"""The default port with ``--tls`` (8000 without)."""
_HOST_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9_.-]{0,251}[a-z0-9_])?\.?", re.ASCII)


class SettingsError(ValueError):
    """A setting that cannot be used; the message says which and why."""


class ConfigFileError(SettingsError):
    """The ``--config`` file cannot be used; the message names the key."""


@dataclass(frozen=True)
class Settings:
    """Everything a graphsec process needs to know.

    ``home``: where the SQLite file and the signing key live (``GRAPHSEC_HOME``, default
    ``./.graphsec``). ``database_url``: ``sqlite:///path`` (default ``$GRAPHSEC_HOME/graphsec.db``).
    ``max_body_bytes``: larger request bodies are refused with 413.
    """

    home: Path
    database_url: str
    host: str = "127.0.0.1"
    """The address to listen on (``--host``, ``GRAPHSEC_HOST``); also a Host name links may use."""
    port: int = 8000
    """The port to listen on (``--port``, ``GRAPHSEC_PORT``)."""
    workers: int = 1
    max_body_bytes: int = DEFAULT_MAX_BODY
    pool_size: int = 10
    """PostgreSQL connections per worker process (``GRAPHSEC_DB_POOL_SIZE``)."""
    pg_cache_mb: int = 64
    """PostgreSQL: MiB of documents each worker keeps by row version (``GRAPHSEC_PG_CACHE_MB``;
    0 turns it off; ``storage/postgres/cache.py``)."""
    pg_reads: str = "prepared"
    """PostgreSQL: how each worker reads by id (``GRAPHSEC_PG_READS``): ``prepared`` (asyncpg's
    public API, a connection of its own) or ``batch`` (through the pool); one of
    :data:`PG_READS`."""
    item_row_builds: int = 4
    """Tenants whose item rows each worker builds or refreshes at once
    (``GRAPHSEC_ITEM_ROW_BUILDS``, ``storage/sql/items.py``): a lambda over ``controlScores``
    reads an index of the items once its tenant's rows are built; ``0`` turns them off in this
    worker (every lambda reads the documents' JSON, nothing is built)."""
    sqlite_cache_mb: int = 64
    """SQLite: MiB of database pages each of a worker's connections may keep (two, and one
    per thread for statements that can scan: ``storage/sqlite/scans.py``)
    (``GRAPHSEC_SQLITE_CACHE_MB``; 0 leaves SQLite's own default of 2 MiB)."""
    max_collection_items: int = MAX_COLLECTION_ITEMS
    """Entries a JSON array or object in a request body may hold (``GRAPHSEC_MAX_COLLECTION_ITEMS``);
    more → 400 naming the property (``graphsec.schema.limits`` says why 2,000)."""
    max_json_depth: int = MAX_DEPTH
    """Levels of JSON arrays and objects a request body may nest, the body being level 1
    (``GRAPHSEC_MAX_JSON_DEPTH``, 6 to 200); deeper → 400 naming the property."""
    max_document_bytes: int = MAX_DOCUMENT_BYTES
    """Bytes one stored entity may take, as canonical JSON with every declared property
    (``GRAPHSEC_MAX_DOCUMENT_BYTES``, default 1 MiB); larger → 413, nothing stored."""
    control_history_entries: int = CONTROL_HISTORY_ENTRIES
    """The newest ``controlStateUpdates`` a control profile's document keeps and its responses
    carry (``GRAPHSEC_CONTROL_HISTORY_ENTRIES``, 1 to 2000); older entries move to the history
    table (``graphsec.schema.limits.CONTROL_HISTORY_ENTRIES`` says why 100)."""
    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS
    """Milliseconds any one database statement may run (``GRAPHSEC_STATEMENT_TIMEOUT_MS``;
    0 = no limit); a statement that runs longer is stopped and the client gets 504
    ``GatewayTimeout``. Graph gives a provider about 10 s before it answers 504."""
    body_timeout_seconds: int = DEFAULT_BODY_TIMEOUT
    """Seconds a client has to send a whole request body, counted from when the server starts
    reading it (``GRAPHSEC_BODY_TIMEOUT_SECONDS``); later → 408 and the connection is closed.
    A deadline, not an idle timeout: a byte a second cannot hold a connection longer."""
    batch_timeout_seconds: int = DEFAULT_BATCH_TIMEOUT
    """Seconds after its arrival within which a ``$batch`` may start its requests
    (``GRAPHSEC_BATCH_TIMEOUT_SECONDS``); a request not started by then answers 504 inside the
    batch. A started request runs to its end, within the statement budget."""
    public_url: str | None = None
    """The origin links are built from (``--public-url``, ``GRAPHSEC_PUBLIC_URL``), e.g.
    ``https://graph.example.com`` behind a proxy; any Host header is then accepted and ignored.
    Normalized: no trailing ``/``; a path prefix is kept."""
    allowed_hosts: tuple[str, ...] = ()
    """Host names (no port; lower case, IPv6 in brackets) clients may send as the Host header
    when there is no ``public_url`` (``--allowed-host``, ``GRAPHSEC_ALLOWED_HOSTS``,
    comma-separated), in addition to the loopback names and the bind address."""
    tls: bool = False
    """Serve HTTPS (``--tls``, ``GRAPHSEC_TLS=1``): the Graph API, the token endpoint and
    health; the default port becomes :data:`TLS_PORT`."""
    certfile: Path | None = None
    """The server's certificate (chain) in PEM (``--certfile``, ``GRAPHSEC_TLS_CERTFILE``);
    without it, a leaf signed by the local CA in ``home`` (``auth/tls.py``)."""
    keyfile: Path | None = None
    """The private key of ``certfile`` (``--keyfile``, ``GRAPHSEC_TLS_KEYFILE``)."""
    trust_issuers: tuple[str, ...] = ()
    """OIDC issuers whose RS256 tokens are accepted besides graphsec's own
    (``--trust-issuer``, ``GRAPHSEC_TRUST_ISSUERS``, space-separated): https URLs, each
    exactly the tokens' ``iss``; keys from their ``jwks_uri`` (``auth/oidc.py``)."""
    audiences: tuple[str, ...] = ()
    """The ``aud`` values accepted from trusted issuers (``--audience``,
    ``GRAPHSEC_AUDIENCES``, space-separated); none given: Graph's
    (``https://graph.microsoft.com`` and its app id)."""
    config_file: Path | None = None
    """The TOML file of throttling, chaos and providers (``--config``, ``GRAPHSEC_CONFIG``;
    docs/configuration.md), read into :attr:`behaviour`."""
    throttle: bool = False
    """Graph's throttling limits on (``--throttle``, ``GRAPHSEC_THROTTLE=1``), as the file's
    ``[throttling] enabled = true`` does."""
    behaviour: Behaviour = field(default_factory=Behaviour)
    """What ``config_file`` and ``throttle`` describe, checked whole."""
    metrics: bool = False
    """Serve Prometheus metrics on ``/metrics`` (``--metrics``, ``GRAPHSEC_METRICS=1``;
    docs/operations.md)."""
    metrics_public: bool = False
    """``/metrics`` without the operator key (``--metrics-public``,
    ``GRAPHSEC_METRICS_PUBLIC=1``)."""
    log_format: str = "text"
    """The access log (``--log-format``, ``GRAPHSEC_LOG_FORMAT``): ``text``, ``json`` or
    ``off``; by default ``text`` when stderr is a terminal, else ``json``."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read ``GRAPHSEC_HOME``, ``GRAPHSEC_DATABASE_URL``, ``GRAPHSEC_MAX_BODY_BYTES`` and the
        other ``GRAPHSEC_*`` settings below; apply
        ``overrides`` (flags) whose value is not None; validate."""
        env = os.environ if env is None else env
        home = Path(env.get("GRAPHSEC_HOME") or ".graphsec").expanduser().absolute()
        if overrides.get("home") is not None:
            home = Path(str(overrides["home"])).expanduser().absolute()
        database_url = env.get("GRAPHSEC_DATABASE_URL") or f"sqlite:///{home / 'graphsec.db'}"
        max_body = _whole(env, "GRAPHSEC_MAX_BODY_BYTES", DEFAULT_MAX_BODY)
        pool_size = _whole(env, "GRAPHSEC_DB_POOL_SIZE", 10)
        pg_cache_mb = _whole(env, "GRAPHSEC_PG_CACHE_MB", 64)
        sqlite_cache_mb = _whole(env, "GRAPHSEC_SQLITE_CACHE_MB", 64)
        item_row_builds = _whole(env, "GRAPHSEC_ITEM_ROW_BUILDS", cls.item_row_builds)
        control_history = _whole(env, "GRAPHSEC_CONTROL_HISTORY_ENTRIES", CONTROL_HISTORY_ENTRIES)
        max_items = _whole(env, "GRAPHSEC_MAX_COLLECTION_ITEMS", MAX_COLLECTION_ITEMS)
        max_depth = _whole(env, "GRAPHSEC_MAX_JSON_DEPTH", MAX_DEPTH)
        max_document = _whole(env, "GRAPHSEC_MAX_DOCUMENT_BYTES", MAX_DOCUMENT_BYTES)
        statement_timeout_ms = _whole(env, "GRAPHSEC_STATEMENT_TIMEOUT_MS",
                                      DEFAULT_STATEMENT_TIMEOUT_MS)
        body_timeout = _whole(env, "GRAPHSEC_BODY_TIMEOUT_SECONDS", DEFAULT_BODY_TIMEOUT)
        batch_timeout = _whole(env, "GRAPHSEC_BATCH_TIMEOUT_SECONDS", DEFAULT_BATCH_TIMEOUT)
        allowed = tuple((env.get("GRAPHSEC_ALLOWED_HOSTS") or "").split(","))
        settings = cls(home=home, database_url=database_url, max_body_bytes=max_body,
                       host=env.get("GRAPHSEC_HOST") or cls.host,
                       port=_whole(env, "GRAPHSEC_PORT", cls.port),
                       pool_size=pool_size, pg_cache_mb=pg_cache_mb,
                       pg_reads=env.get("GRAPHSEC_PG_READS") or cls.pg_reads,
                       sqlite_cache_mb=sqlite_cache_mb, item_row_builds=item_row_builds,
                       control_history_entries=control_history,
                       max_collection_items=max_items, max_json_depth=max_depth,
                       max_document_bytes=max_document,
                       body_timeout_seconds=body_timeout,
                       batch_timeout_seconds=batch_timeout,
                       workers=_whole(env, "GRAPHSEC_WORKERS", cls.workers),
                       statement_timeout_ms=statement_timeout_ms,
                       public_url=env.get("GRAPHSEC_PUBLIC_URL") or None, allowed_hosts=allowed)
        settings = replace(settings, tls=(env.get("GRAPHSEC_TLS") or "").lower() in _TRUE,
                           certfile=_path(env.get("GRAPHSEC_TLS_CERTFILE")),
                           keyfile=_path(env.get("GRAPHSEC_TLS_KEYFILE")),
                           trust_issuers=tuple((env.get("GRAPHSEC_TRUST_ISSUERS") or "").split()),
                           audiences=tuple((env.get("GRAPHSEC_AUDIENCES") or "").split()))
        given = {k: v for k, v in overrides.items() if v is not None and k != "home"}
        settings = replace(settings, **given)  # type: ignore[arg-type]
        if settings.tls and overrides.get("port") is None and not env.get("GRAPHSEC_PORT"):
            settings = replace(settings, port=TLS_PORT)
        settings = _tls_settings(settings)
        if overrides.get("config_file") is None and env.get("GRAPHSEC_CONFIG"):
            settings = replace(settings, config_file=Path(env["GRAPHSEC_CONFIG"]))
        settings = _switches(settings, env, overrides)
        try:
            behaviour = (load_behaviour(settings.config_file, settings.throttle)
                         if settings.config_file is not None
                         else parse_behaviour({}, settings.throttle))
        except ConfigError as exc:
            raise ConfigFileError(str(exc)) from None
        settings = replace(settings, behaviour=behaviour)
        settings = replace(settings, public_url=_public_url(settings.public_url),
                           allowed_hosts=_host_names(settings.allowed_hosts))
        settings.validate()
        return settings

    def validate(self) -> None:
        if not 0 < self.port < 65536:
            raise SettingsError(f"port {self.port} is not between 1 and 65535")
        if self.workers < 1:
            raise SettingsError("--workers must be at least 1")
        if self.max_body_bytes < 1024:
            raise SettingsError("GRAPHSEC_MAX_BODY_BYTES must be at least 1024")
        if not 1 <= self.pool_size <= 1000:
            raise SettingsError("GRAPHSEC_DB_POOL_SIZE must be from 1 to 1000")
        if not 0 <= self.pg_cache_mb <= 65536:
            raise SettingsError("GRAPHSEC_PG_CACHE_MB must be from 0 (off) to 65536")
        if self.pg_reads not in PG_READS:
            raise SettingsError(f"GRAPHSEC_PG_READS must be one of {', '.join(PG_READS)} "
                                f"(not {self.pg_reads!r})")
        if not 0 <= self.sqlite_cache_mb <= 65536:
            raise SettingsError("GRAPHSEC_SQLITE_CACHE_MB must be from 0 (SQLite's default) to "
                                "65536")
        if not 0 <= self.item_row_builds <= 64:
            raise SettingsError("GRAPHSEC_ITEM_ROW_BUILDS must be from 0 (item rows off) to 64")
        if not 0 <= self.statement_timeout_ms <= 3_600_000:
            raise SettingsError("GRAPHSEC_STATEMENT_TIMEOUT_MS must be from 0 (no limit) to "
                                "3600000 (an hour)")
        if not 1 <= self.body_timeout_seconds <= 3600:
            raise SettingsError("GRAPHSEC_BODY_TIMEOUT_SECONDS must be from 1 to 3600")
        if not 1 <= self.batch_timeout_seconds <= 3600:
            raise SettingsError("GRAPHSEC_BATCH_TIMEOUT_SECONDS must be from 1 to 3600")
        if not 1 <= self.max_collection_items <= 1_000_000:
            raise SettingsError("GRAPHSEC_MAX_COLLECTION_ITEMS must be from 1 to 1000000")
        if not 6 <= self.max_json_depth <= 200:
            raise SettingsError("GRAPHSEC_MAX_JSON_DEPTH must be from 6 (the declared types nest "
                                "5 levels) to 200 (the JSON encoder stops near 254)")
        if not 16384 <= self.max_document_bytes <= 268_435_455:
            raise SettingsError("GRAPHSEC_MAX_DOCUMENT_BYTES must be from 16384 to 268435455 "
                                "(PostgreSQL's largest jsonb value)")
        if not 1 <= self.control_history_entries <= 2000:
            raise SettingsError("GRAPHSEC_CONTROL_HISTORY_ENTRIES must be from 1 to 2000 (the "
                                "newest entry is the control's current state)")
        if self.metrics_public and not self.metrics:
            raise SettingsError("--metrics-public needs --metrics (GRAPHSEC_METRICS=1)")
        if self.log_format not in LOG_FORMATS:
            raise SettingsError(f"--log-format/GRAPHSEC_LOG_FORMAT must be one of "
                                f"{', '.join(LOG_FORMATS)} (not {self.log_format!r})")
        if self.backend == "sqlite":
            self.sqlite_path()  # raises for a URL that names no file
        if (self.certfile is None) != (self.keyfile is None):
            raise SettingsError("--certfile and --keyfile go together (or give neither: a "
                                "local CA signs a certificate)")
        if self.certfile is not None and not self.tls:
            raise SettingsError("--certfile and --keyfile need --tls")
        for url in self.trust_issuers:
            if not url.lower().startswith("https://") or not urlsplit(url).hostname:
                raise SettingsError(f"--trust-issuer {url!r}: an issuer is an https URL, "
                                    "exactly as its tokens' 'iss' claim")

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``, from the database URL's scheme."""
        scheme = urlparse(self.database_url).scheme
        if scheme == "sqlite":
            return "sqlite"
        if scheme in ("postgresql", "postgres"):
            return "postgresql"
        raise SettingsError(f"unsupported database URL '{self.database_url}': use "
                            "sqlite:///path/to/file.db or postgresql://user@host:5432/db")

    def sqlite_path(self) -> Path:
        """The SQLite file named by ``database_url``."""
        if not self.database_url.startswith("sqlite:///"):
            raise SettingsError(
                f"unsupported database URL '{self.database_url}': use sqlite:///path/to/file.db"
            )
        path = self.database_url[len("sqlite:///"):].split("?", 1)[0]
        if not path or path.endswith("/"):
            raise SettingsError("the SQLite URL names no file: use sqlite:///path/to/file.db")
        return Path(path)

    def environ(self) -> dict[str, str]:
        """The variables that make ``from_env`` rebuild these settings in a worker process."""
        return {
            "GRAPHSEC_HOME": str(self.home),
            "GRAPHSEC_DATABASE_URL": self.database_url,
            "GRAPHSEC_HOST": self.host,
            "GRAPHSEC_PORT": str(self.port),
            "GRAPHSEC_MAX_BODY_BYTES": str(self.max_body_bytes),
            "GRAPHSEC_DB_POOL_SIZE": str(self.pool_size),
            "GRAPHSEC_PG_CACHE_MB": str(self.pg_cache_mb),
            "GRAPHSEC_PG_READS": self.pg_reads,
            "GRAPHSEC_SQLITE_CACHE_MB": str(self.sqlite_cache_mb),
            "GRAPHSEC_ITEM_ROW_BUILDS": str(self.item_row_builds),
            "GRAPHSEC_CONTROL_HISTORY_ENTRIES": str(self.control_history_entries),
            "GRAPHSEC_MAX_COLLECTION_ITEMS": str(self.max_collection_items),
            "GRAPHSEC_MAX_JSON_DEPTH": str(self.max_json_depth),
            "GRAPHSEC_MAX_DOCUMENT_BYTES": str(self.max_document_bytes),
            "GRAPHSEC_STATEMENT_TIMEOUT_MS": str(self.statement_timeout_ms),
            "GRAPHSEC_BODY_TIMEOUT_SECONDS": str(self.body_timeout_seconds),
            "GRAPHSEC_BATCH_TIMEOUT_SECONDS": str(self.batch_timeout_seconds),
            "GRAPHSEC_WORKERS": str(self.workers),
            "GRAPHSEC_PUBLIC_URL": self.public_url or "",
            "GRAPHSEC_ALLOWED_HOSTS": ",".join(self.allowed_hosts),
            "GRAPHSEC_TLS": "1" if self.tls else "",
            "GRAPHSEC_CONFIG": str(self.config_file.absolute()) if self.config_file else "",
            "GRAPHSEC_THROTTLE": "1" if self.throttle else "",
            "GRAPHSEC_TLS_CERTFILE": str(self.certfile or ""),
            "GRAPHSEC_TLS_KEYFILE": str(self.keyfile or ""),
            "GRAPHSEC_TRUST_ISSUERS": " ".join(self.trust_issuers),
            "GRAPHSEC_AUDIENCES": " ".join(self.audiences),
            "GRAPHSEC_METRICS": "1" if self.metrics else "",
            "GRAPHSEC_METRICS_PUBLIC": "1" if self.metrics_public else "",
            "GRAPHSEC_LOG_FORMAT": self.log_format,
        }

    @property
    def authority(self) -> str:
        """The origin clients reach graphsec's token endpoint at: the public URL, else this
        server's scheme, ``localhost`` for a loopback or wildcard bind (the name the local
        CA's certificate is best known by), and port."""
        if self.public_url:
            return self.public_url
        host = self.host
        if host in ("127.0.0.1", "::1", "0.0.0.0", "::", "localhost"):  # noqa: S104
            host = "localhost"
        elif ":" in host:
            host = f"[{host}]"
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"


def _public_url(text: str | None) -> str | None:
    """``scheme://host[:port][/prefix]`` without a trailing ``/``; SettingsError otherwise."""
    if not text or not text.strip():
        return None
    how = "use e.g. https://graph.example.com (http or https, a host, optionally a path prefix)"
    try:
        parts = urlsplit(text.strip())
        parts.port  # noqa: B018 (urlsplit checks the port only when asked for it)
    except ValueError as exc:
        raise SettingsError(f"--public-url/GRAPHSEC_PUBLIC_URL: '{text}' is not a URL ({exc}); "
                            f"{how}") from None
    if (parts.scheme.lower() not in ("http", "https") or not parts.hostname
            or "@" in parts.netloc or parts.query or parts.fragment or not text.isascii()):
        raise SettingsError(f"--public-url/GRAPHSEC_PUBLIC_URL: '{text}' cannot be used; {how}")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def _host_names(names: Iterable[str]) -> tuple[str, ...]:
    """Host names lower-cased, IPv6 addresses in brackets, blanks dropped; SettingsError for
    anything that is not a bare host name or address (a port, a scheme, a path)."""
    out: list[str] = []
    for raw in names:
        name = raw.strip().lower()
        if not name:
            continue
        address = name[1:-1] if name.startswith("[") and name.endswith("]") else name
        try:
            if ipaddress.ip_address(address).version == 6:
                name = f"[{address}]"
        except ValueError:
            if not _HOST_NAME.fullmatch(name):
                raise SettingsError(
                    f"--allowed-host/GRAPHSEC_ALLOWED_HOSTS: '{raw.strip()}' is not a host "
                    "name; give the name only, without scheme or port (any port is accepted), "
                    "e.g. graph.example.com"
                ) from None
        if name not in out:
            out.append(name)
    return tuple(out)


_TRUE = ("1", "true", "yes", "on")
LOG_FORMATS = ("text", "json", "off")


def _switches(settings: Settings, env: Mapping[str, str],
              overrides: Mapping[str, object]) -> Settings:
    """``GRAPHSEC_THROTTLE`` (on when either it or the flag says), and metrics and the access
    log from ``GRAPHSEC_METRICS``, ``GRAPHSEC_METRICS_PUBLIC`` and ``GRAPHSEC_LOG_FORMAT``
    unless a flag said; the log's default follows stderr."""
    if (env.get("GRAPHSEC_THROTTLE") or "").lower() in _TRUE:
        settings = replace(settings, throttle=True)
    metrics = overrides.get("metrics")
    public = overrides.get("metrics_public")
    form = overrides.get("log_format") or env.get("GRAPHSEC_LOG_FORMAT") \
        or ("text" if sys.stderr is not None and sys.stderr.isatty() else "off")
    return replace(
        settings,
        metrics=bool(metrics) if metrics is not None
        else (env.get("GRAPHSEC_METRICS") or "").lower() in _TRUE,
        metrics_public=bool(public) if public is not None
        else (env.get("GRAPHSEC_METRICS_PUBLIC") or "").lower() in _TRUE,
        log_format=str(form).lower())


def _path(text: str | None) -> Path | None:
    return Path(text).expanduser().absolute() if text else None


def _tls_settings(settings: Settings) -> Settings:
    """Paths absolute, issuers and audiences without blanks or repeats."""
    return replace(
        settings,
        certfile=_path(str(settings.certfile)) if settings.certfile else None,
        keyfile=_path(str(settings.keyfile)) if settings.keyfile else None,
        trust_issuers=tuple(dict.fromkeys(u.strip() for u in settings.trust_issuers if u.strip())),
        audiences=tuple(dict.fromkeys(a.strip() for a in settings.audiences if a.strip())),
    )


def _whole(env: Mapping[str, str], name: str, default: int) -> int:
    try:
        return int(env.get(name) or default)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number") from None
