"""Settings, from command-line flags and ``GRAPHSEC_*`` variables, validated once.

There is no global settings instance: ``Settings.from_env()`` builds one where it is needed
(the CLI, and each server worker process from the environment the CLI prepared).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlparse

DEFAULT_MAX_BODY = 4 * 1024 * 1024


class SettingsError(ValueError):
    """A setting that cannot be used; the message says which and why."""


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
    port: int = 8000
    workers: int = 1
    max_body_bytes: int = DEFAULT_MAX_BODY
    pool_size: int = 10
    """PostgreSQL connections per worker process (``GRAPHSEC_DB_POOL_SIZE``)."""
    pg_cache_mb: int = 64
    """PostgreSQL: MiB of documents each worker keeps by row version (``GRAPHSEC_PG_CACHE_MB``;
    0 turns it off; ``storage/pgcache.py``)."""
    sqlite_cache_mb: int = 64
    """SQLite: MiB of database pages each of a worker's two connections may keep
    (``GRAPHSEC_SQLITE_CACHE_MB``; 0 leaves SQLite's own default of 2 MiB)."""

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
        settings = cls(home=home, database_url=database_url, max_body_bytes=max_body,
                       pool_size=pool_size, pg_cache_mb=pg_cache_mb,
                       sqlite_cache_mb=sqlite_cache_mb)
        given = {k: v for k, v in overrides.items() if v is not None and k != "home"}
        settings = replace(settings, **given)  # type: ignore[arg-type]
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
        if not 0 <= self.sqlite_cache_mb <= 65536:
            raise SettingsError("GRAPHSEC_SQLITE_CACHE_MB must be from 0 (SQLite's default) to "
                                "65536")
        if self.backend == "sqlite":
            self.sqlite_path()  # raises for a URL that names no file

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
            "GRAPHSEC_MAX_BODY_BYTES": str(self.max_body_bytes),
            "GRAPHSEC_DB_POOL_SIZE": str(self.pool_size),
            "GRAPHSEC_PG_CACHE_MB": str(self.pg_cache_mb),
            "GRAPHSEC_SQLITE_CACHE_MB": str(self.sqlite_cache_mb),
        }


def _whole(env: Mapping[str, str], name: str, default: int) -> int:
    try:
        return int(env.get(name) or default)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number") from None
