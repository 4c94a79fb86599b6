"""Build a tenant's item rows (``storage/sql/items.py``) in a test, and see whether a filter's
statement reads them."""

from __future__ import annotations

from typing import Any

from graphsec.odata.filter import parse_filter
from graphsec.odata.query import ListQuery, OrderKey
from graphsec.schema.security import SECURE_SCORE, SECURE_SCORES

ITEMS = "secure_scores_control_scores"
ANY = parse_filter("controlScores/any()", SECURE_SCORE)


async def build_item_rows(store: Any, tenant: str) -> None:
    """Ask for the tenant's ``controlScores`` rows until they are complete, and wait for
    what the asking started."""
    et = store.tables[SECURE_SCORES.name]
    for _ in range(1_000):
        ready = store.items.ready(tenant, et, ANY)
        if not isinstance(ready, frozenset):
            ready = await ready
        await store.items.settled()  # the build, or the refresh the last lambda started
        if ready:
            return
    raise AssertionError(f"the item rows of {tenant} were never complete")


def reads_item_rows(store: Any, tenant: str, text: str) -> bool:
    """Whether the page statement of ``text`` for ``tenant`` reads the item table, as the
    store would build it now (the tenant's rows complete or not)."""
    et = store.tables[SECURE_SCORES.name]
    expr = parse_filter(text, SECURE_SCORE)
    ready = frozenset(c for c in et.items if (tenant, et.items[c].table.name) in store.items.built)
    query = ListQuery(order=(OrderKey(("id",)),), limit=10, filter=expr)
    sql, _ = store._statements.page(et, tenant, query, None, ready)
    return ITEMS in sql
