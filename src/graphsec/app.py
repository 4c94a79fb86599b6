"""``create_app(settings)``: the one place where everything is wired together."""

from __future__ import annotations

from graphsec.api.http import GraphApp
from graphsec.api.routing import Router
from graphsec.auth.keys import load_or_create
from graphsec.auth.tokens import LocalIssuer, TokenVerifier
from graphsec.config import Settings
from graphsec.odata.skiptoken import SkipTokens
from graphsec.resources.collection import EntitySetResource
from graphsec.schema.security import ENTITY_SETS
from graphsec.storage.sqlite import SQLiteStore


def create_app(settings: Settings) -> GraphApp:
    """Build the ASGI application for ``settings``; the store opens on startup."""
    key = load_or_create(settings.home)
    store = SQLiteStore(settings.sqlite_path(), ENTITY_SETS)
    return GraphApp(
        router=Router(ENTITY_SETS),
        verifier=TokenVerifier([LocalIssuer(key)]),
        resource=EntitySetResource(store, SkipTokens(key.derive_secret("skiptoken"))),
        max_body_bytes=settings.max_body_bytes,
        startup=store.open,
        shutdown=store.close,
    )


def app_from_env() -> GraphApp:
    """The factory server workers call: settings come from the ``GRAPHSEC_*`` environment."""
    return create_app(Settings.from_env())
