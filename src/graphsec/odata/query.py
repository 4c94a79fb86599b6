"""The typed, bounded description of a list request that the store executes (pure data, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphsec.odata.filter_ast import remember_hash
from graphsec.schema.types import EntitySet


@dataclass(frozen=True)
class OrderKey:
    """One sort key: a property path (``("createdDateTime",)``, ``("vendorInformation", "provider")``)
    and its direction. Ascending puts nulls first and descending puts them last, on every backend."""

    path: tuple[str, ...]
    descending: bool = False

    @property
    def text(self) -> str:
        return "/".join(self.path) + (" desc" if self.descending else "")


remember_hash(OrderKey)


@dataclass(frozen=True)
class ListQuery:
    """What to read from one entity set of one tenant.

    ``order`` always ends with ``id`` so the order is total and keyset paging is exact;
    ``after`` holds the sort-key values of the last entity of the previous page (a decoded
    ``$skiptoken``); ``skip`` applies to the first page only.
    """

    order: tuple[OrderKey, ...]
    limit: int
    skip: int = 0
    after: tuple[Any, ...] | None = None
    filter: Any = None
    count: bool = False


def total_order(keys: tuple[OrderKey, ...]) -> tuple[OrderKey, ...]:
    """``keys`` ending with ``id`` (added when missing, in the direction of the last key, so
    that one index serves both the order and its tie-break): the order :class:`ListQuery`
    needs."""
    if any(k.path == ("id",) for k in keys):
        return keys
    return (*keys, OrderKey(("id",), keys[-1].descending if keys else False))


def default_order(entity_set: EntitySet) -> tuple[OrderKey, ...]:
    """The total order of a list without ``$orderby``, which an index of the set serves (made
    once per entity set: the same tuple, whose hash is remembered, keys every default-order
    statement)."""
    known = _DEFAULT_ORDERS.get(id(entity_set))
    if known is None or known[0] is not entity_set:
        order = total_order(tuple(OrderKey((name,), desc)
                                  for name, desc in entity_set.default_order))
        if len(_DEFAULT_ORDERS) >= 64:
            _DEFAULT_ORDERS.clear()
        known = _DEFAULT_ORDERS[id(entity_set)] = (entity_set, order)
    return known[1]


_DEFAULT_ORDERS: dict[int, tuple[EntitySet, tuple[OrderKey, ...]]] = {}
"""id(entity set) → (the entity set, its default order); the entity set is held so that its id
cannot be another's."""
