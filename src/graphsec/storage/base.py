"""The store interface: the only code that runs SQL implements it.

The tenant is the first argument of every method, so no caller can reach another tenant's rows;
the entity set is the second, as declared in the catalogue the store was built for (a store is
handed the catalogue, ``graphsec.schema.security.ENTITY_SETS``, when it is made).
Documents travel as canonical JSON bytes, ready to be spliced into responses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from graphsec.odata.query import ListQuery
from graphsec.schema.types import EntitySet


@dataclass(frozen=True, slots=True)
class Changed:
    """What an update makes of the stored document: the new document, and the entries of its
    bounded history (a control profile's ``controlStateUpdates``) that no longer fit in it,
    oldest first, which the store appends to the entity's history table in the same
    transaction. The document stays bounded, so an update costs the same however long the
    history has grown."""

    doc: dict[str, Any]
    history: tuple[dict[str, Any], ...] = ()


Change = Callable[[dict[str, Any]], "Changed | dict[str, Any]"]
"""Turns the stored document into the new one (a plain dict: nothing leaves for the history);
raising aborts the update and changes nothing."""


Admit = Callable[[bytes], None]
"""Sees a document's canonical bytes just before the store writes them (the caller's bound on
what is stored: ``resources/collection.py`` refuses large documents); raising refuses the write
and stores nothing (an update's transaction is rolled back)."""


def changed(result: Changed | dict[str, Any]) -> Changed:
    """A change's result as :class:`Changed`."""
    return result if isinstance(result, Changed) else Changed(result)


@dataclass(frozen=True)
class Page:
    """One page of a list: documents, the sort keys of the last one when more remain, the count."""

    docs: list[bytes]
    next_after: tuple[Any, ...] | None
    count: int | None = None


@dataclass(frozen=True, slots=True)
class AppRegistration:
    """An app registration as stored (``storage/sql/tables.py`` ``registrations_table``):
    the client's tenant and id, its display name, the SHA-256 (hex) of its secret or None,
    its application permissions, and the PEM certificates it may sign assertions with."""

    tenant: str
    client_id: str
    name: str
    secret_sha256: str | None
    roles: tuple[str, ...]
    certificates: tuple[str, ...]
    created: str


class Registrations(Protocol):
    """The app registrations of graphsec's token endpoint, partitioned by tenant (both stores
    implement it beside :class:`Store`)."""

    async def add_registration(self, tenant: str, client_id: str, name: str,
                               secret_sha256: str | None, roles: tuple[str, ...],
                               certificates: tuple[str, ...]) -> None:
        """Store a new registration (client ids are fresh GUIDs: never a conflict)."""

    async def registration(self, tenant: str, client_id: str) -> AppRegistration | None:
        """The registration, or None."""

    async def registrations(self, tenant: str | None) -> tuple[AppRegistration, ...]:
        """A tenant's registrations (every tenant's with None), by tenant, then creation."""

    async def delete_registration(self, tenant: str, client_id: str) -> bool:
        """Remove a registration; False when there was none."""

    async def has_registrations(self, tenant: str) -> bool:
        """Whether the tenant holds any registration (an unknown tenant holds none)."""


class Store(Protocol):
    """Persistent storage of every entity set, partitioned by tenant."""

    async def open(self) -> None:
        """Connect and make sure the schema is in place."""

    async def close(self) -> None:
        """Release connections."""

    async def create(self, tenant: str, entity_set: EntitySet, doc: dict[str, Any],
                     admit: Admit | None = None) -> bytes:
        """Insert a complete document (once ``admit`` accepts its bytes);
        :class:`graphsec.errors.Conflict` if the id exists."""

    async def get(self, tenant: str, entity_set: EntitySet, entity_id: str) -> bytes | None:
        """The stored document, or None."""

    async def update(self, tenant: str, entity_set: EntitySet, entity_id: str, change: Change,
                     admit: Admit | None = None) -> bytes | None:
        """Apply ``change`` to the stored document atomically (once ``admit`` accepts the new
        bytes), appending the history entries it pushed out; None when there is no such
        entity."""

    async def delete(self, tenant: str, entity_set: EntitySet, entity_id: str) -> bool:
        """Remove an entity and its history; False when there was none."""

    async def list(self, tenant: str, entity_set: EntitySet, query: ListQuery) -> Page:
        """One page in the query's order, plus the filtered count when asked for."""

    async def count(self, tenant: str, entity_set: EntitySet, query: ListQuery) -> int:
        """How many entities match the query's filter."""


@dataclass(frozen=True, slots=True)
class ConnectionUse:
    """A worker's database connections right now: running a statement, and open but idle."""

    in_use: int
    idle: int


class Health(Protocol):
    """What operators ask a store about (``/readyz`` and ``/metrics``, docs/operations.md)."""

    async def readiness(self, seconds: float) -> str | None:
        """None when the database answers within ``seconds`` and its schema is the newest this
        graphsec knows; otherwise why not, in one line without secrets. Never waits longer than
        ``seconds``, nor holds a connection longer."""

    def connection_use(self) -> ConnectionUse:
        """The connections this store holds in this process (no I/O)."""


class Database(Store, Registrations, Health, Protocol):
    """What each store is: the entity sets' storage, the app registrations, its health."""
