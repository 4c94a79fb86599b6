"""The store interface: the only code that runs SQL implements it.

The tenant is the first argument of every method, so no caller can reach another tenant's rows.
Documents travel as canonical JSON bytes, ready to be spliced into responses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from graphsec.odata.query import ListQuery

Change = Callable[[dict[str, Any]], dict[str, Any]]
"""Turns the stored document into the new one; raising aborts the update and changes nothing."""


@dataclass(frozen=True)
class Page:
    """One page of a list: documents, the sort keys of the last one when more remain, the count."""

    docs: list[bytes]
    next_after: tuple[Any, ...] | None
    count: int | None = None


class Store(Protocol):
    """Persistent storage of every entity set, partitioned by tenant."""

    async def open(self) -> None:
        """Connect and make sure the schema is in place."""

    async def close(self) -> None:
        """Release connections."""

    async def create(self, tenant: str, entity_set: str, doc: dict[str, Any]) -> bytes:
        """Insert a complete document; :class:`graphsec.errors.Conflict` if the id exists."""

    async def get(self, tenant: str, entity_set: str, entity_id: str) -> bytes | None:
        """The stored document, or None."""

    async def update(self, tenant: str, entity_set: str, entity_id: str, change: Change) -> bytes | None:
        """Apply ``change`` to the stored document atomically; None when there is no such entity."""

    async def delete(self, tenant: str, entity_set: str, entity_id: str) -> bool:
        """Remove an entity; False when there was none."""

    async def list(self, tenant: str, entity_set: str, query: ListQuery) -> Page:
        """One page in the query's order, plus the filtered count when asked for."""

    async def count(self, tenant: str, entity_set: str, query: ListQuery) -> int:
        """How many entities match the query's filter."""
