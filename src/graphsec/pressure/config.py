"""The ``--config`` file (TOML) and ``--throttle``: how graphsec behaves under pressure.

Checked whole when it is read: an unknown key, a value of the wrong type or out of range, or a
status that is not an error stops with one line naming the key (:class:`ConfigError`), so
nothing starts half-configured. Every key, with its default, is in docs/configuration.md.
Tenant sections (``[tenants."<tid>".chaos]`` …) override the global ones key by key; tenant
providers override the global provider of the same vendor and name.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from graphsec.auth.principal import TENANT_EXAMPLE, canonical_tenant

CHAOS_STATUSES = (429, 500, 502, 503, 504)
"""The statuses chaos may answer: those Graph answers under load and its clients retry or
report."""


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the key and what is wrong."""


@dataclass(frozen=True)
class Throttling:
    """Graph's documented limits for ``/security``, per application and tenant (the global one
    per application across tenants). docs/configuration.md says which entity sets count against
    which."""

    enabled: bool = False
    per_minute: int = 150
    per_ten_minutes: int = 10_000
    concurrent: int = 4
    global_per_ten_seconds: int = 130_000
    redis: str | None = None
    """Keep the counters in this Redis (``redis://host:port/db``, ``rediss://``,
    ``unix://``) instead of the database (docs/configuration.md says when)."""


@dataclass(frozen=True)
class Chaos:
    """Random failures and latency: each request fails with probability ``rate``, with a
    status drawn from ``statuses``; every request waits a time drawn from ``latency_ms``
    (inclusive range). ``seed`` makes the sequence repeatable (per worker process)."""

    rate: float = 0.0
    statuses: tuple[int, ...] = CHAOS_STATUSES
    latency_ms: tuple[int, int] = (0, 0)
    seed: int | None = None
    retry_after_seconds: int = 2

    @property
    def active(self) -> bool:
        return self.rate > 0 or self.latency_ms[1] > 0


@dataclass(frozen=True)
class Provider:
    """A data provider behind the security API, named as entities name it in
    ``vendorInformation`` (``vendor``/``provider``). Healthy unless it has a failing ``status``
    or a ``latency_ms`` at or past ``provider_timeout_ms`` (then it reads as 504)."""

    vendor: str
    provider: str
    status: int | None = None
    latency_ms: int = 0
    provider_timeout_ms: int = 10_000

    @property
    def key(self) -> tuple[str, str]:
        return self.vendor.casefold(), self.provider.casefold()

    @property
    def failure(self) -> tuple[int, int] | None:
        """(status, latency in ms) the provider answers with, when that is a failure: its
        status, or 504 after the timeout; None when it is healthy (2xx, or slow within the
        timeout)."""
        if self.latency_ms >= self.provider_timeout_ms:
            return 504, self.provider_timeout_ms
        if self.status is not None and not 200 <= self.status < 300:
            return self.status, self.latency_ms
        return None


@dataclass(frozen=True)
class TenantBehaviour:
    """Everything that applies to one tenant's requests, its overrides applied."""

    throttling: Throttling = field(default_factory=Throttling)
    chaos: Chaos = field(default_factory=Chaos)
    providers: tuple[Provider, ...] = ()


@dataclass(frozen=True)
class Behaviour:
    """The whole configuration: the global behaviour and each overriding tenant's."""

    default: TenantBehaviour = field(default_factory=TenantBehaviour)
    tenants: dict[str, TenantBehaviour] = field(default_factory=dict)

    def of(self, tenant: str) -> TenantBehaviour:
        return self.tenants.get(tenant, self.default)

    @property
    def throttling_anywhere(self) -> bool:
        return self.default.throttling.enabled or any(
            t.throttling.enabled for t in self.tenants.values())

    @property
    def chaos_anywhere(self) -> bool:
        return self.default.chaos.active or any(t.chaos.active for t in self.tenants.values())

    @property
    def providers_anywhere(self) -> bool:
        return any(p.failure or p.latency_ms for t in (self.default, *self.tenants.values())
                   for p in t.providers)


def load(path: Path, throttle: bool = False) -> Behaviour:
    """The configuration in the TOML file at ``path``; ``throttle`` (``--throttle``) turns
    throttling on as ``[throttling] enabled = true`` does (a file's ``false`` wins over it)."""
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    return parse(data, throttle)


def parse(data: dict[str, Any], throttle: bool = False) -> Behaviour:
    """The configuration a parsed TOML document describes (see :func:`load`)."""
    _known(data, ("throttling", "chaos", "providers", "tenants"), "")
    base = TenantBehaviour(throttling=Throttling(enabled=throttle))
    default = _section(base, data, "", tenant=False)
    tenants: dict[str, TenantBehaviour] = {}
    raw_tenants = data.get("tenants", {})
    if not isinstance(raw_tenants, dict):
        raise ConfigError("'tenants' must be a table of tenant ids, e.g. "
                          f'[tenants."{TENANT_EXAMPLE}".chaos]')
    for tid, section in raw_tenants.items():
        tenant = canonical_tenant(tid)
        where = f'tenants."{tid}"'
        if tenant is None:
            raise ConfigError(f"{where}: {tid!r} is not a tenant id (a GUID such as "
                              f"{TENANT_EXAMPLE})")
        if not isinstance(section, dict):
            raise ConfigError(f"{where} must be a table")
        _known(section, ("throttling", "chaos", "providers"), where + ".")
        tenants[tenant] = _section(default, section, where + ".", tenant=True)
    return Behaviour(default, tenants)


def _section(base: TenantBehaviour, data: dict[str, Any], prefix: str,
             tenant: bool) -> TenantBehaviour:
    throttling = base.throttling
    if "throttling" in data:
        raw = _table(data["throttling"], prefix + "throttling")
        if tenant and "global_per_ten_seconds" in raw:
            raise ConfigError(f"{prefix}throttling.global_per_ten_seconds: the global limit is "
                              "per application across all tenants; set it in [throttling]")
        if tenant and "redis" in raw:
            raise ConfigError(f"{prefix}throttling.redis: the counters are kept in one place "
                              "for every tenant; set it in [throttling]")
        throttling = _apply(throttling, raw, prefix + "throttling")
    chaos = base.chaos
    if "chaos" in data:
        chaos = _apply(chaos, _table(data["chaos"], prefix + "chaos"), prefix + "chaos")
    providers = base.providers
    if "providers" in data:
        raw_providers = data["providers"]
        if not isinstance(raw_providers, list):
            raise ConfigError(f"{prefix}providers must be an array of tables ([[providers]])")
        merged = {p.key: p for p in providers}
        for n, raw in enumerate(raw_providers):
            provider = _provider(raw, f"{prefix}providers[{n}]")
            merged[provider.key] = provider
        providers = tuple(merged.values())
    return TenantBehaviour(throttling, chaos, providers)


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table")
    return value


def _known(data: dict[str, Any], names: tuple[str, ...], prefix: str) -> None:
    for key in data:
        if key not in names:
            raise ConfigError(f"unknown key '{prefix}{key}' (known here: {', '.join(names)})")


def _apply(base: Any, raw: dict[str, Any], where: str) -> Any:
    names = tuple(f.name for f in fields(base))
    _known(raw, names, where + ".")
    values = {k: _value(type(base), k, v, f"{where}.{k}") for k, v in raw.items()}
    return replace(base, **values)


def _value(kind: type, key: str, value: Any, where: str) -> Any:
    if kind is Throttling:
        if key == "enabled":
            return _bool(value, where)
        if key == "redis":
            if not isinstance(value, str) or not value.startswith(
                    ("redis://", "rediss://", "unix://")):
                raise ConfigError(f"{where} must be a Redis URL: redis://host:6379/0, "
                                  f"rediss://… or unix://… (got {value!r})")
            return value
        return _int(value, where, 1, 10_000_000)
    if key == "rate":
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ConfigError(f"{where} must be a number from 0 to 1 (got {value!r})")
        return float(value)
    if key == "statuses":
        if not isinstance(value, list) or not value:
            raise ConfigError(f"{where} must be a non-empty array of statuses, from "
                              f"{list(CHAOS_STATUSES)}")
        for status in value:
            if status not in CHAOS_STATUSES or isinstance(status, bool):
                raise ConfigError(f"{where}: {status!r} is not one of the error statuses chaos "
                                  f"answers with ({', '.join(map(str, CHAOS_STATUSES))})")
        return tuple(value)
    if key == "latency_ms":
        if (not isinstance(value, list) or len(value) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
                or not 0 <= value[0] <= value[1] <= 60_000):
            raise ConfigError(f"{where} must be [low, high] in milliseconds, 0 ≤ low ≤ high ≤ "
                              f"60000 (got {value!r})")
        return (value[0], value[1])
    if key == "seed":
        return _int(value, where, 0, 2**63 - 1)
    if key == "retry_after_seconds":
        return _int(value, where, 1, 3600)
    raise AssertionError(key)  # pragma: no cover (the keys were checked against the fields)


def _provider(raw: Any, where: str) -> Provider:
    data = _table(raw, where)
    _known(data, tuple(f.name for f in fields(Provider)), where + ".")
    for name in ("vendor", "provider"):
        if not isinstance(data.get(name), str) or not data[name].strip():
            raise ConfigError(f"{where}.{name} is required: the name entities carry in "
                              f"vendorInformation.{name}")
    status = data.get("status")
    if status is not None:
        status = _int(status, f"{where}.status", 0, 999)
        if not 400 <= status <= 599:
            raise ConfigError(f"{where}.status: {status} is not an error status (400–599); "
                              "leave it out for a healthy provider")
    return Provider(data["vendor"].strip(), data["provider"].strip(), status,
                    _int(data.get("latency_ms", 0), f"{where}.latency_ms", 0, 600_000),
                    _int(data.get("provider_timeout_ms", 10_000),
                         f"{where}.provider_timeout_ms", 1, 600_000))


def _int(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{where} must be a whole number from {low} to {high} (got {value!r})")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false (got {value!r})")
    return value
