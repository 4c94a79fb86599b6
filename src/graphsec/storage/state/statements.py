"""The statements of :mod:`graphsec.storage.state`, built with SQLAlchemy Core for one dialect."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, bindparam, delete, func, literal_column, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from graphsec.schema.types import DATETIME, EntitySet
from graphsec.schema.values import parse_datetime
from graphsec.storage.sql.items import Written
from graphsec.storage.sql.statements import Compiled, doc_column
from graphsec.storage.sql.tables import EntityTable, behaviour_table, build_tables, column_name
from graphsec.storage.state import Entry

APP_REGISTRATIONS = "appRegistrations"
"""The name :meth:`StateStore.reset` counts deleted app registrations under."""


@dataclass(frozen=True)
class SetStatements:
    """One entity set's statements."""

    entity_table: EntityTable
    tenants: Compiled
    counts: Compiled
    page: Compiled
    history: Compiled
    upsert: Compiled
    delete_all: Compiled
    delete_tenant: Compiled
    delete_history: Compiled
    insert_history: Compiled
    columns: tuple[tuple[str, str, bool], ...]
    """(property, column, stored as ticks) of each scalar property but ``id``."""


class Statements:
    """Every statement of the state store for ``entity_sets`` in ``dialect`` (``sqlite`` or
    ``postgresql``), compiled once."""

    def __init__(self, entity_sets: tuple[EntitySet, ...], dialect: str) -> None:
        self.dialect_name = dialect
        compiler: Dialect
        module: Any
        if dialect == "sqlite":
            compiler, module = sqlite.dialect(paramstyle="qmark"), sqlite
        else:
            from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect

            module = postgresql
            compiler = asyncpg_dialect.dialect()  # type: ignore[no-untyped-call]
        metadata, tables = build_tables(entity_sets)
        self.sets = {name: _set_statements(et, compiler, module, dialect)
                     for name, et in sorted(tables.items())}
        self.written = Written(tables, lambda stmt: Compiled(stmt, compiler))
        """SQLite: the item rows of what an import writes (``storage/sql/items.py``)."""
        h = next(iter(tables.values())).history if tables else None
        assert h is not None
        apps: Table = metadata.tables["app_registrations"]
        self.delete_history_all = Compiled(delete(h), compiler)
        self.delete_history_tenant = Compiled(
            delete(h).where(h.c.tenant_id == bindparam("tenant")), compiler)
        self.delete_apps_all = Compiled(delete(apps), compiler)
        self.delete_apps_tenant = Compiled(
            delete(apps).where(apps.c.tenant_id == bindparam("tenant")), compiler)
        b = behaviour_table(type(metadata)())
        self.behaviour = Compiled(select(b.c.version, b.c.document).where(b.c.id == 1), compiler)
        self.behaviour_version = Compiled(select(b.c.version).where(b.c.id == 1), compiler)
        put = module.insert(b).values(id=1, version=1, document=bindparam("document"))
        self.put_behaviour = Compiled(put.on_conflict_do_update(
            index_elements=["id"],
            set_={"version": b.c.version + 1, "document": put.excluded.document},
        ).returning(b.c.version), compiler)

    def row(self, et: EntityTable, tenant: str, entity_id: str, doc: dict[str, Any],
            data: bytes) -> list[Any]:
        """The upsert's positional parameters for one entity: what ``row_values`` gives, with
        the columns' names worked out once per entity set rather than once per row."""
        s = self.sets[et.entity_set.name]
        values: dict[str, Any] = {}
        for name, column, ticks in s.columns:
            value = doc.get(name)
            values[column] = parse_datetime(value).ticks if ticks and value is not None \
                else value
        values.update(tenant_id=tenant, tenant=tenant, id=entity_id, doc=data.decode(),
                      body=None if self.dialect_name == "sqlite" else data)
        return s.upsert.params(values)


def _set_statements(et: EntityTable, compiler: Dialect, module: Any,
                    dialect: str) -> SetStatements:
    t, h = et.table, et.history
    tenant = t.c.tenant_id == bindparam("tenant")
    values: dict[str, Any] = {c.name: bindparam(c.name) for c in t.columns}
    insert = module.insert(t).values(values)
    upsert = insert.on_conflict_do_update(
        index_elements=["tenant_id", "id"],
        set_={c.name: insert.excluded[c.name] for c in t.columns
              if c.name not in ("tenant_id", "id")})
    entries = ((h.c.tenant_id == bindparam("tenant"))
               & (h.c.entity_set == literal_column(f"'{et.entity_set.name}'")))
    return SetStatements(
        entity_table=et,
        tenants=Compiled(select(t.c.tenant_id).distinct().order_by(t.c.tenant_id), compiler),
        counts=Compiled(select(t.c.tenant_id, func.count()).group_by(t.c.tenant_id), compiler),
        page=Compiled(select(t.c.id, doc_column(et, dialect)).where(
            tenant & (t.c.id > bindparam("after"))).order_by(t.c.id).limit(bindparam("n")),
            compiler),
        history=Compiled(select(h.c.entity_id, h.c.entry).where(
            entries & (h.c.entity_id >= bindparam("first"))
            & (h.c.entity_id <= bindparam("last"))).order_by(h.c.entity_id, h.c.seq), compiler),
        upsert=Compiled(upsert, compiler),
        delete_all=Compiled(delete(t), compiler),
        delete_tenant=Compiled(delete(t).where(tenant), compiler),
        delete_history=Compiled(delete(h).where(
            entries & (h.c.entity_id == bindparam("id"))), compiler),
        insert_history=Compiled(module.insert(h).values(
            tenant_id=bindparam("tenant"), entity_set=literal_column(f"'{et.entity_set.name}'"),
            entity_id=bindparam("id"), seq=bindparam("seq"), entry=bindparam("entry")),
            compiler),
        columns=tuple((p.name, column_name(p.name), p.type == DATETIME) for p in et.scalar),
    )


Rows = dict[str, list[list[Any]]]


def batch(sql: Statements, entries: Sequence[Entry]) -> tuple[Rows, Rows, Rows]:
    """The parameters of a batch by entity set: upserts, history deletions (of every entity
    of a set whose declaration writes history, and of every entity that brings some), history
    insertions."""
    rows: Rows = {}
    replaced: Rows = {}
    history: Rows = {}
    for e in entries:
        name = e.entity_set.name
        s = sql.sets[name]
        assert e.doc is not None
        rows.setdefault(name, []).append(sql.row(s.entity_table, e.tenant, e.id, e.doc, e.data))
        if e.history or e.entity_set.update_rule is not None:
            replaced.setdefault(name, []).append(
                s.delete_history.params({"tenant": e.tenant, "id": e.id}))
        for seq, entry in enumerate(e.history, 1):
            history.setdefault(name, []).append(s.insert_history.params(
                {"tenant": e.tenant, "id": e.id, "seq": seq, "entry": entry.decode()}))
    return rows, replaced, history
