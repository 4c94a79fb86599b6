"""``create_app(settings)``: the one place where everything is wired together."""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING

from graphsec.api.admin import AdminEndpoints
from graphsec.api.entra import EntraEndpoints
from graphsec.api.http import GraphApp
from graphsec.api.origin import Origin
from graphsec.api.probes import Probes
from graphsec.api.routing import Router
from graphsec.api.ui import Dashboard
from graphsec.auth.entra import TokenEndpoint
from graphsec.auth.keys import load_or_create
from graphsec.auth.oidc import RemoteIssuer
from graphsec.auth.operator import load_or_create_operator_key
from graphsec.auth.tokens import GRAPH_AUDIENCES, LocalIssuer, TenantIssuer, TokenVerifier, TrustedIssuer
from graphsec.config import Settings
from graphsec.memory import settle_heap, tune_allocator
from graphsec.observability.access_log import AccessLog
from graphsec.observability.observer import Observer
from graphsec.odata.skiptoken import SkipTokens
from graphsec.pressure.config import Behaviour
from graphsec.pressure.throttle import Throttle
from graphsec.pressure.windows import ThrottleState
from graphsec.resources.admin import Admin
from graphsec.resources.collection import EntitySetResource
from graphsec.resources.runtime import RuntimeBehaviour
from graphsec.resources.state import EXPORT_SEAL, Seal
from graphsec.schema.limits import Limits
from graphsec.schema.security import ENTITY_SETS
from graphsec.storage.base import Database
from graphsec.storage.state import StateStore
from graphsec.storage.state import open_state as open_state_store
from graphsec.storage.throttle import open_state

if TYPE_CHECKING:
    from graphsec.observability.metrics import Metrics
    from graphsec.pressure.chaos import Monkey


def create_store(settings: Settings) -> Database:
    """The store ``settings.database_url`` names (not opened yet)."""
    if settings.backend == "postgresql":
        from graphsec.storage.postgres import PostgresStore

        return PostgresStore(settings.database_url, ENTITY_SETS, pool_size=settings.pool_size,
                             cache_bytes=settings.pg_cache_mb * 2**20, reads=settings.pg_reads,
                             statement_timeout_ms=settings.statement_timeout_ms,
                             item_row_builds=settings.item_row_builds)
    from graphsec.storage.sqlite import SQLiteStore

    return SQLiteStore(settings.sqlite_path(), ENTITY_SETS,
                       cache_kib=settings.sqlite_cache_mb * 1024,
                       statement_timeout_ms=settings.statement_timeout_ms,
                       item_row_builds=settings.item_row_builds)


def create_app(settings: Settings, settle: bool = False) -> GraphApp:
    """Build the ASGI application for ``settings``; the store opens on startup (and then, with
    ``settle``, the heap is frozen: :func:`graphsec.memory.settle_heap`)."""
    key = load_or_create(settings.home)
    store = create_store(settings)
    tenant_issuer = TenantIssuer(key)
    remote = [RemoteIssuer(url, settings.audiences or GRAPH_AUDIENCES)
              for url in settings.trust_issuers]
    issuers: list[TrustedIssuer] = [LocalIssuer(key), *remote]

    metrics = _metrics(settings, store)
    verifier = TokenVerifier(issuers, tenant_issuer=tenant_issuer, authority=settings.authority)
    state = open_state_store(settings.database_url, ENTITY_SETS)
    runtime = RuntimeBehaviour(
        settings.behaviour, state,
        functools.partial(open_state, settings.database_url, settings.sqlite_path()
                          if settings.backend == "sqlite" else None, settings.workers,
                          settings.behaviour.default.throttling.redis),
        throttle_of=functools.partial(_throttle, metrics),
        monkey_of=functools.partial(_monkey, metrics))
    admin = Admin(state, store, runtime, LocalIssuer(key), ENTITY_SETS, limits(settings),
                  settings.database_url, Seal(key.derive_secret(EXPORT_SEAL)))

    async def startup() -> None:
        await store.open()
        await runtime.start()
        await asyncio.gather(*(issuer.refresh() for issuer in remote))  # failures only logged
        if settle:
            settle_heap()

    app = GraphApp(
        router=Router(ENTITY_SETS),
        verifier=verifier,
        resource=EntitySetResource(store, SkipTokens(key.derive_secret("skiptoken")),
                                   limits(settings)),
        max_body_bytes=settings.max_body_bytes,
        startup=startup,
        shutdown=functools.partial(shutdown, store, runtime, state),
        origin=Origin(settings.public_url, settings.allowed_hosts, settings.host, settings.port),
        body_timeout_seconds=settings.body_timeout_seconds,
        doors=[EntraEndpoints(TokenEndpoint(store, tenant_issuer), key.kid, key.public,
                              settings.body_timeout_seconds),
               AdminEndpoints(admin, load_or_create_operator_key(settings.home), verifier,
                              settings.body_timeout_seconds),
               Dashboard()],
        batch_timeout_seconds=settings.batch_timeout_seconds,
        probes=Probes(store.readiness, verifier, metrics, None if settings.metrics_public
                      or not settings.metrics else load_or_create_operator_key(settings.home)),
        observer=None if metrics is None and settings.log_format == "off" else Observer(
            metrics, None if settings.log_format == "off" else AccessLog(settings.log_format),
            (entity_set.name for entity_set in ENTITY_SETS)),
    )
    runtime.attach(app)  # throttling, chaos and providers: --config now, the admin API's later
    return app


def _metrics(settings: Settings, store: Database) -> Metrics | None:
    """The metrics of this process when ``settings`` turn them on (the throttle and chaos tell
    them of what they refuse: :func:`_throttle`, :func:`_monkey`); None otherwise."""
    if not settings.metrics:
        return None
    from graphsec.observability.metrics import Metrics  # in the worker: multiprocess.py says why

    def connections() -> tuple[int, int]:
        use = store.connection_use()
        return use.in_use, use.idle

    return Metrics(connections)


def _throttle(metrics: Metrics | None, behaviour: Behaviour, counters: ThrottleState) -> Throttle:
    """The throttle of ``behaviour`` (``RuntimeBehaviour`` makes one for each change)."""
    return Throttle(behaviour, counters,
                    None if metrics is None else metrics.throttled_request)


def _monkey(metrics: Metrics | None, behaviour: Behaviour) -> Monkey:
    """The chaos of ``behaviour`` (``RuntimeBehaviour`` makes one for each change)."""
    from graphsec.pressure.chaos import Monkey

    return Monkey(behaviour, on_strike=None if metrics is None else metrics.chaos_struck)


async def shutdown(store: Database, runtime: RuntimeBehaviour, state: StateStore) -> None:
    await runtime.stop()  # closes the throttle's counters
    await state.close()
    await store.close()


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
