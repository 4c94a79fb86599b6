"""PostgreSQL's row version (``xmin``) in statements: a page read as ids and versions, and the
bodies of the rows whose version is not held (``cache.py`` says why both exist).

The dialect-neutral listing (``storage/sql/listing.py``) builds a page with whatever leading
columns a store asks for; this module supplies PostgreSQL's.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Text,
    and_,
    bindparam,
    cast,
    func,
    insert,
    literal,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import UserDefinedType

from graphsec.odata.query import ListQuery
from graphsec.storage.sql.items import NONE_READY
from graphsec.storage.sql.listing import StatementCache
from graphsec.storage.sql.tables import EntityTable


class XID(UserDefinedType[int]):
    """PostgreSQL's ``xid``: a transaction id, the type of ``xmin`` (asyncpg reads it as int)."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "XID"


def row_version() -> ColumnElement[int]:
    """The version of a row: ``xmin``, the transaction that wrote it. A system column, so not
    declared in the tables; unqualified, since in these statements only the entity's table
    has one (a function's rows, such as ``unnest``'s, have no system columns)."""
    return literal_column("xmin", XID())


def versions_head(et: EntityTable) -> list[ColumnElement[Any]]:
    """Each row's id and version instead of its document, for a page whose documents may
    already be held."""
    return [et.table.c.id, row_version()]


class VersionedStatements(StatementCache):
    """:class:`StatementCache` with the page as ids and versions."""

    def versions_page(self, et: EntityTable, tenant: str, query: ListQuery,
                      ready: frozenset[str] = NONE_READY) -> tuple[str, list[Any]]:
        """SQL and positional parameters of one page as ``id, version, key1, …[, count]``
        (the count when the query asks for it)."""
        build = self.counted_page if query.count else self.page
        return build(et, tenant, query, versions_head, ready)


def bodies_by_version(et: EntityTable) -> Select[Any]:
    """The bodies of one tenant's rows (``tenant``) by id and version (``ids``/``versions``,
    parallel arrays), each row with its key's position (``n``, from 1); a row whose version is
    no longer the one asked for is not returned."""
    t = et.table
    keys = func.unnest(cast(bindparam("ids"), ARRAY(Text)),
                       cast(bindparam("versions"), ARRAY(XID()))
                       ).table_valued("id", "version", with_ordinality="n").render_derived(name="k")
    match = and_(t.c.tenant_id == bindparam("tenant"), t.c.id == keys.c.id.collate("C"),
                 row_version() == keys.c.version)
    return select(keys.c.n, t.c.body).select_from(keys.join(t, match))


def versioned_writes(et: EntityTable) -> dict[str, Any]:
    """``get_versioned``: the document and its version by key (``tenant``, ``id``);
    ``update_versioned``: the row's columns set where it still has ``version``, returning the
    row's new version (no row: it had another);
    ``update_versioned_history``: the same, and, only when that wrote, ``entries`` (JSON texts,
    oldest first) appended to the entity's history, numbered on from its last entry: one
    statement, so the entries and the document are written together or not at all."""
    t, h = et.table, et.history
    key = (t.c.tenant_id == bindparam("tenant")) & (t.c.id == bindparam("id"))
    changes: dict[str, Any] = {c.name: bindparam(c.name) for c in t.columns
                               if c.name not in ("tenant_id", "id")}
    write = update(t).where(
        key & (row_version() == bindparam("version", type_=XID()))).values(changes)
    written = write.returning(row_version().label("version")).cte("written")
    entries = func.unnest(cast(bindparam("entries"), ARRAY(Text))).table_valued(
        "entry", with_ordinality="n").render_derived()
    own = ((h.c.tenant_id == bindparam("tenant")) & (h.c.entity_set == et.entity_set.name)
           & (h.c.entity_id == bindparam("id")))
    last = select(func.coalesce(func.max(h.c.seq), literal_column("0"))).where(own)
    rows = select(bindparam("tenant"), literal(et.entity_set.name), bindparam("id"),
                  last.scalar_subquery() + entries.c.n, entries.c.entry
                  ).select_from(written).select_from(entries)
    appended = insert(h).from_select(
        ["tenant_id", "entity_set", "entity_id", "seq", "entry"], rows).cte("appended")
    return {
        "get_versioned": select(t.c.body, row_version()).where(key),
        "update_versioned": write.returning(row_version()),
        # PostgreSQL runs a data-modifying WITH whether or not the statement reads it
        "update_versioned_history": select(written.c.version).add_cte(appended),
    }
