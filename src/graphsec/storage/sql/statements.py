"""What the SQL stores share: statement building and compiling, the stored JSON form, row values."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    LargeBinary,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.sql import Executable

from graphsec.errors import Conflict
from graphsec.storage.base import Admit
from graphsec.storage.sql.tables import EntityTable


def encode_doc(doc: dict[str, Any], admit: Admit | None = None) -> bytes:
    """Canonical stored JSON: keys sorted, as Graph's responses list them. ``admit``, when
    given, sees the bytes before they are returned (and may refuse them by raising): the
    caller's size bound is measured on exactly what is written, without a second encoding."""
    data = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    if admit is not None:
        admit(data)
    return data


class Compiled:
    """A statement compiled for one dialect, with its bind names in positional order."""

    __slots__ = ("base", "names", "sql")

    def __init__(self, stmt: Any, dialect: Dialect) -> None:
        compiled = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        self.sql: str = compiled.string
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        try:
            self.base: dict[str, Any] = dict(compiled.params)
        except InvalidRequestError:  # named parameters without a value: all come per call
            self.base = {}

    def params(self, values: dict[str, Any]) -> list[Any]:
        """Positional parameters: ``values`` by name, the statement's own literals otherwise."""
        if not self.base:
            return [values[n] for n in self.names]
        merged = {**self.base, **values}
        return [merged[n] for n in self.names]


def doc_column(et: EntityTable, dialect: str) -> ColumnElement[Any]:
    """The stored document, canonical, as bytes: SQLite's ``doc`` (``CAST AS BLOB`` saves
    re-encoding every row's text), PostgreSQL's ``body`` (the bytes beside the jsonb)."""
    if dialect == "sqlite":
        return cast(et.table.c.doc, LargeBinary)
    return et.table.c.body


def fixed_statements(et: EntityTable, dialect: str) -> dict[str, Executable]:
    """The statements every store runs with bound ``tenant``/``id`` and column values."""
    t = et.table
    doc = doc_column(et, dialect)
    key = (t.c.tenant_id == bindparam("tenant")) & (t.c.id == bindparam("id"))
    values: dict[str, Any] = {c.name: bindparam(c.name) for c in t.columns}
    changes: dict[str, Any] = {c.name: bindparam(c.name) for c in t.columns
                               if c.name not in ("tenant_id", "id")}
    h = et.history
    entries = ((h.c.tenant_id == bindparam("tenant")) & (h.c.entity_set == et.entity_set.name)
               & (h.c.entity_id == bindparam("id")))
    # the next number of the entity's own sequence: the primary key's prefix finds its last
    # row, and the entity's row lock (held by every update) keeps two writers from taking it
    seq = select(func.coalesce(func.max(h.c.seq), literal_column("0")) + literal_column("1")
                 ).where(entries).scalar_subquery()
    return {
        "get": select(doc).where(key),
        "get_for_update": select(doc).where(key).with_for_update(),
        "insert": insert(t).values(values),
        "update": update(t).where(key).values(changes),
        "delete": delete(t).where(key),
        "append_history": insert(h).inline().values(
            tenant_id=bindparam("tenant"), entity_set=et.entity_set.name,
            entity_id=bindparam("id"), seq=seq, entry=bindparam("entry")),
        "delete_history": delete(h).where(entries),
    }


def conflict(et: EntityTable, entity_id: str) -> Conflict:
    """The 409 for a create whose id the tenant already uses."""
    return Conflict(f"A {et.entity_set.entity_type.name} with id '{entity_id}' already exists.")


def row_values(et: EntityTable, tenant: str, entity_id: str, doc: dict[str, Any],
               data: bytes, dialect: str) -> dict[str, Any]:
    """Bound values for insert/update of ``doc`` (whose canonical JSON is ``data``)."""
    values = et.column_values(doc)
    text = data.decode()
    values.update(tenant_id=tenant, tenant=tenant, id=entity_id, doc=text,
                  body=None if dialect == "sqlite" else data)
    return values
