"""``create_app(settings)``: the one place where everything is wired together."""

from __future__ import annotations

import asyncio
import functools

from graphsec.api.entra import EntraEndpoints
from graphsec.api.http import GraphApp
from graphsec.api.origin import Origin
from graphsec.api.routing import Router
from graphsec.auth.entra import TokenEndpoint
from graphsec.auth.keys import load_or_create
from graphsec.auth.oidc import RemoteIssuer
from graphsec.auth.tokens import GRAPH_AUDIENCES, LocalIssuer, TenantIssuer, TokenVerifier, TrustedIssuer
from graphsec.config import Settings
from graphsec.memory import settle_heap, tune_allocator
from graphsec.odata.skiptoken import SkipTokens
from graphsec.pressure.throttle import Throttle
from graphsec.resources.collection import EntitySetResource
from graphsec.schema.limits import Limits
from graphsec.schema.security import ENTITY_SETS
from graphsec.storage.base import Database
from graphsec.storage.throttle import open_state


def create_store(settings: Settings) -> Database:
    """The store ``settings.database_url`` names (not opened yet)."""
    if settings.backend == "postgresql":
        from graphsec.storage.postgres import PostgresStore

        return PostgresStore(settings.database_url, ENTITY_SETS, pool_size=settings.pool_size,
                             cache_bytes=settings.pg_cache_mb * 2**20, reads=settings.pg_reads,
                             statement_timeout_ms=settings.statement_timeout_ms)
    from graphsec.storage.sqlite import SQLiteStore

    return SQLiteStore(settings.sqlite_path(), ENTITY_SETS,
                       cache_kib=settings.sqlite_cache_mb * 1024,
                       statement_timeout_ms=settings.statement_timeout_ms)


def create_app(settings: Settings, settle: bool = False) -> GraphApp:
    """Build the ASGI application for ``settings``; the store opens on startup (and then, with
    ``settle``, the heap is frozen: :func:`graphsec.memory.settle_heap`)."""
    key = load_or_create(settings.home)
    store = create_store(settings)
    tenant_issuer = TenantIssuer(key)
    remote = [RemoteIssuer(url, settings.audiences or GRAPH_AUDIENCES)
              for url in settings.trust_issuers]
    issuers: list[TrustedIssuer] = [LocalIssuer(key), *remote]

    throttle = monkey = None
    behaviour = settings.behaviour
    if behaviour.throttling_anywhere:
        throttle = Throttle(behaviour, open_state(
            settings.database_url, settings.sqlite_path() if settings.backend == "sqlite"
            else None, settings.workers, behaviour.default.throttling.redis))
    if behaviour.chaos_anywhere:
        from graphsec.pressure.chaos import Monkey

        monkey = Monkey(behaviour)

    async def startup() -> None:
        await store.open()
        await asyncio.gather(*(issuer.refresh() for issuer in remote))  # failures only logged
        if settle:
            settle_heap()

    return GraphApp(
        router=Router(ENTITY_SETS),
        verifier=TokenVerifier(issuers, tenant_issuer=tenant_issuer,
                               authority=settings.authority),
        resource=EntitySetResource(store, SkipTokens(key.derive_secret("skiptoken")),
                                   limits(settings)),
        max_body_bytes=settings.max_body_bytes,
        startup=startup,
        shutdown=functools.partial(shutdown, store, throttle),
        origin=Origin(settings.public_url, settings.allowed_hosts, settings.host, settings.port),
        body_timeout_seconds=settings.body_timeout_seconds,
        doors=[EntraEndpoints(TokenEndpoint(store, tenant_issuer), key.kid, key.public,
                              settings.body_timeout_seconds)],
        batch_timeout_seconds=settings.batch_timeout_seconds,
        throttle=throttle,
        monkey=monkey,
        behaviour=behaviour,
    )


async def shutdown(store: Database, throttle: Throttle | None) -> None:
    await store.close()
    if throttle is not None:
        await throttle.close()


def limits(settings: Settings) -> Limits:
    """The bounds on writes that ``settings`` name, for the resource layer and its validator."""
    return Limits(max_collection_items=settings.max_collection_items,
                  max_depth=settings.max_json_depth,
                  max_document_bytes=settings.max_document_bytes,
                  control_history_entries=settings.control_history_entries)


def app_from_env() -> GraphApp:
    """The factory server workers call: settings come from the ``GRAPHSEC_*`` environment."""
    tune_allocator()
    return create_app(Settings.from_env(), settle=True)
