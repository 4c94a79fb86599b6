"""SQL for list and count requests, built with SQLAlchemy Core for any dialect.

Paging is keyset paging: the next page starts after the sort-key values of the last entity of the
previous one, so a deep page costs what the first does. Because an order may mix directions and
nullable keys, "after (v1, …, vn)" is a concatenation of branches, each an index range:

    k1 = v1 AND … AND k(n-1) = v(n-1) AND kn after vn
    …
    k1 after v1

where "k after v" is ``k > v`` ascending (nulls come first, so nothing null follows a value), and
``k < v`` then ``k IS NULL`` descending (nulls come last). Each branch is limited to the page
size and the branches are read in order, so the database never walks the rows it skips.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    false,
    func,
    literal,
    select,
    union_all,
)

from graphsec.odata.query import ListQuery, OrderKey
from graphsec.storage.expressions import sort_expression
from graphsec.storage.tables import EntityTable


def _filtered(et: EntityTable, tenant: str, query: ListQuery, dialect: str) -> ColumnElement[bool]:
    condition: ColumnElement[bool] = et.table.c.tenant_id == tenant
    if query.filter is not None:
        from graphsec.storage.filter_sql import compile_filter

        condition = and_(condition, compile_filter(query.filter, et, dialect))
    return condition


def _order_by(keys: list[ColumnElement[Any]], order: tuple[OrderKey, ...]) -> list[Any]:
    return [
        k.desc().nulls_last() if o.descending else k.asc().nulls_first()
        for k, o in zip(keys, order, strict=True)
    ]


def _after(key: ColumnElement[Any], value: Any, descending: bool) -> list[ColumnElement[bool]]:
    """The conditions, in sort order, that select what comes strictly after ``value``."""
    if descending:
        if value is None:
            return []
        return [key < value, key.is_(None)]
    if value is None:
        return [key.is_not(None)]
    return [key > value]


def list_statement(et: EntityTable, tenant: str, query: ListQuery, dialect: str) -> Select[Any]:
    """SELECT doc, key1, …, keyn for one page (limit + 1 rows, to learn whether more remain)."""
    keys = [sort_expression(et, o.path, dialect) for o in query.order]
    where = _filtered(et, tenant, query, dialect)
    limit = query.limit + 1
    labelled = [k.label(f"k{i}") for i, k in enumerate(keys)]
    if query.after is None:
        stmt = select(et.table.c.doc, *labelled).where(where).order_by(*_order_by(keys, query.order))
        return stmt.limit(limit).offset(query.skip or None)

    branches: list[tuple[ColumnElement[bool], ...]] = []
    for i in range(len(keys) - 1, -1, -1):
        prefix = tuple(
            keys[j].is_(query.after[j]) if query.after[j] is None else keys[j] == query.after[j]
            for j in range(i)
        )
        for cond in _after(keys[i], query.after[i], query.order[i].descending):
            branches.append((*prefix, cond))
    if not branches:
        return select(et.table.c.doc, *labelled).where(false()).limit(0)
    parts = []
    for n, conds in enumerate(branches):
        part = (
            select(et.table.c.doc, *labelled, literal(n).label("branch"))
            .where(where, *conds)
            .order_by(*_order_by(keys, query.order))
            .limit(limit)
        ).subquery(f"b{n}")
        parts.append(select(*part.c))
    combined = union_all(*parts).subquery("page")
    ordered = [combined.c.branch, *_order_by([combined.c[f"k{i}"] for i in range(len(keys))],
                                             query.order)]
    return (
        select(combined.c.doc, *(combined.c[f"k{i}"] for i in range(len(keys))))
        .order_by(*ordered)
        .limit(limit)
    )


def count_statement(et: EntityTable, tenant: str, query: ListQuery, dialect: str) -> Select[Any]:
    """SELECT count(*) of the filtered set (paging options do not apply)."""
    return select(func.count()).select_from(et.table).where(_filtered(et, tenant, query, dialect))


__all__ = ["count_statement", "list_statement"]
