"""A store's whole state at once: count, export, import (upsert), reset; and the runtime
behaviour's row. What the admin API (``/_graphsec/``) and ``graphsec export|import|reset`` run,
on either backend, the same promises on both (tests/admin/):

- :meth:`StateStore.export` reads in pages by key (tenant, entity set, id), never the whole
  store at once, inside one snapshot (a read transaction), so that what it yields is one
  consistent state even while requests write.
- :meth:`StateStore.upsert` writes a batch in one transaction: all of it or nothing. An entity
  already stored under the same (tenant, entity set, id) is replaced, and its history with it,
  so that importing the same entries twice leaves one copy.
- :meth:`StateStore.reset` deletes in one transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from graphsec.schema.types import EntitySet


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored entity: its document as stored (canonical JSON bytes, ``doc`` the same
    parsed; None where it was not parsed, as on export) and the entries its history holds
    (``graphsec.storage.sql.tables.history_table``), oldest first, each canonical JSON."""

    tenant: str
    entity_set: EntitySet
    id: str
    data: bytes
    history: tuple[bytes, ...] = ()
    doc: dict[str, Any] | None = None


Counts = dict[str, dict[str, int]]
"""Entities by tenant, then by entity set name."""


class StateStore(Protocol):
    async def counts(self) -> Counts:
        """Every tenant that has an entity, with its number of entities in each entity set
        (0 included)."""

    async def reset(self, tenant: str | None, apps: bool = False) -> dict[str, int]:
        """Delete every entity (of ``tenant``, or of all) with its history, and with
        ``apps`` the app registrations too; how many of each entity set were deleted
        (``appRegistrations`` too, with ``apps``)."""

    def export(self, tenant: str | None, page: int = 1000) -> AsyncIterator[list[Entry]]:
        """Pages of entries in (tenant, entity set name, id) order, all read in one snapshot."""

    async def upsert(self, entries: Sequence[Entry]) -> int:
        """Write ``entries`` (``doc`` given: complete, valid) in one transaction, replacing
        those stored under the same key and their history; how many were written."""

    async def behaviour(self) -> tuple[int, str | None]:
        """The runtime behaviour's version (0 before any change) and document (JSON text)."""

    async def behaviour_version(self) -> int:
        """The runtime behaviour's version alone: what every worker polls."""

    async def put_behaviour(self, document: str) -> int:
        """Store a new behaviour document; its version (one more than the last)."""

    async def close(self) -> None: ...


def open_state(database_url: str, entity_sets: tuple[EntitySet, ...]) -> StateStore:
    """The state store of the graphsec database at ``database_url`` (schema in place)."""
    if database_url.startswith("sqlite:///"):
        from graphsec.storage.state.sqlite import SQLiteState

        return SQLiteState(database_url[len("sqlite:///"):].split("?", 1)[0], entity_sets)
    from graphsec.storage.state.postgres import PostgresState

    return PostgresState(database_url, entity_sets)


__all__ = ["Counts", "Entry", "StateStore", "open_state"]
