"""Tables derived from the schema: one per entity set, with SQLAlchemy Core metadata.

Each row holds the tenant, the id, one typed column per scalar property (DateTimeOffset as 100 ns
ticks since 1970 so that it sorts and compares exactly, at the precision the client sent) and
``doc``, the whole entity as canonical JSON text, which is what responses are made from. Nested
collections and complex values live only in ``doc`` and are queried with the database's JSON
functions.

Beside them, ``history``: the entries a bounded collection pushed out of an entity's document
(a control profile keeps only its newest ``controlStateUpdates``), append-only, one row each,
in the order they were made (``seq``), deleted with their entity.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeEngine

from graphsec.schema.types import (
    DATETIME,
    STRING,
    Collection,
    ComplexType,
    EntitySet,
    EnumType,
    ItemRows,
    Primitive,
    Property,
)
from graphsec.schema.values import parse_datetime

_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")


def column_name(prop_name: str) -> str:
    """``createdDateTime`` → ``created_date_time``."""
    return _SNAKE.sub("_", prop_name).lower()


TEXT: TypeEngine[Any] = Text().with_variant(Text(collation="C"), "postgresql")
"""Text that compares by code point on every backend (SQLite's BINARY; PostgreSQL's "C")."""


def _sql_type(prop: Property) -> TypeEngine[Any]:
    t = prop.type
    if isinstance(t, EnumType):
        return TEXT
    assert isinstance(t, Primitive)
    types: dict[str, TypeEngine[Any]] = {
        "Edm.String": TEXT,
        "Edm.Guid": TEXT,
        "Edm.Int32": Integer(),
        "Edm.Int64": BigInteger(),
        "Edm.Double": Float(),
        "Edm.Boolean": Boolean(),
        "Edm.DateTimeOffset": BigInteger(),
    }
    return types[t.name]


@dataclass(frozen=True)
class ItemTable:
    """The rows of one collection's items (:class:`graphsec.schema.types.ItemRows`): the
    tenant, the entity's id (``parent_id``), the item's position and one typed column per
    declared scalar property of the item type, as the entity's own columns are typed.
    They exist for the tenants whose rows are built (``item_rows_built``); a write of a
    document of such a tenant lists it in ``stale`` (``item_rows_stale``), in its own
    transaction, and its rows are refreshed later (``storage/sql/items.py``, migrations 0008
    and 0009)."""

    collection: str
    table: Table
    scalar: tuple[Property, ...]
    """The item type's declared scalar properties, in column order."""
    stale: Table
    """The entities whose rows are not their document's any more (``items_stale_table``)."""


@dataclass(frozen=True)
class EntityTable:
    """An entity set's table and how its scalar properties map to columns."""

    entity_set: EntitySet
    table: Table
    scalar: tuple[Property, ...]
    """The scalar properties other than ``id``, in column order."""
    history: Table
    """The history table every entity set shares (:func:`history_table`)."""
    items: dict[str, ItemTable] = field(default_factory=dict)
    """The item rows of the collections of ``entity_set.item_rows``, by collection name."""

    def column_values(self, doc: dict[str, Any]) -> dict[str, Any]:
        """The typed column values of a (validated, complete) document."""
        out: dict[str, Any] = {}
        for name, column, is_datetime in self._columns:
            value = doc.get(name)
            if value is not None and is_datetime:
                value = parse_datetime(value).ticks
            out[column] = value
        return out

    @cached_property
    def _columns(self) -> tuple[tuple[str, str, bool], ...]:
        """Each scalar property's name, column and whether it is a DateTimeOffset (stored as
        ticks), worked out once: a write used to spend 3 % of its time renaming them."""
        return tuple((p.name, column_name(p.name), p.type == DATETIME) for p in self.scalar)


HISTORY_TABLE = "history"


def history_table(metadata: MetaData) -> Table:
    """Entries that left an entity's document, oldest first by ``seq`` (1, 2, … per entity).

    The key starts with the tenant, as every table's does; ``entry`` is the entry's canonical
    JSON text. No request reads it (Graph has no endpoint for it): it keeps, for whoever
    queries the database, what the document no longer shows."""
    return Table(
        HISTORY_TABLE, metadata,
        Column("tenant_id", TEXT, nullable=False),
        Column("entity_set", TEXT, nullable=False),
        Column("entity_id", TEXT, nullable=False),
        Column("seq", BigInteger(), nullable=False),
        Column("entry", Text(), nullable=False),
        PrimaryKeyConstraint("tenant_id", "entity_set", "entity_id", "seq"),
    )


ITEMS_BUILT_TABLE = "item_rows_built"


def items_built_table(metadata: MetaData) -> Table:
    """Which tenants' item rows exist, per item table (``items``, its name): ``complete``
    once every entity of the tenant has them, else those of ids up to ``upto`` (a build in
    progress, ``storage/sql/items.py``). A row is never deleted: what is complete stays so,
    kept in every write's transaction."""
    return Table(
        ITEMS_BUILT_TABLE, metadata,
        Column("tenant_id", TEXT, nullable=False),
        Column("items", TEXT, nullable=False),
        Column("upto", TEXT, nullable=True),
        Column("complete", Boolean(), nullable=False),
        PrimaryKeyConstraint("tenant_id", "items"),
    )


ITEMS_STALE_TABLE = "item_rows_stale"


def items_stale_table(metadata: MetaData) -> Table:
    """The entities, per tenant and item table (``items``, its name), written since their item
    rows were made: their rows may be missing or an older version's until a refresh makes
    them again (``storage/sql/items.py``). Reads take these entities' items from the
    documents, not from the rows."""
    return Table(
        ITEMS_STALE_TABLE, metadata,
        Column("tenant_id", TEXT, nullable=False),
        Column("items", TEXT, nullable=False),
        Column("parent_id", TEXT, nullable=False),
        PrimaryKeyConstraint("tenant_id", "items", "parent_id"),
    )


def item_tables(metadata: MetaData, es: EntitySet, stale: Table) -> dict[str, ItemTable]:
    """The item tables of ``es.item_rows``: ``<entity table>_<collection>`` with its indexes
    ``(tenant_id, <the index's item properties, strings by lower case>, parent_id, <the
    strings themselves>)``. The strings at the end make the index cover the statements that
    compare their lower case: without them PostgreSQL reads every matching row from the heap
    (an index-only scan needs the column, not only the expression), and SQLite too."""
    out: dict[str, ItemTable] = {}
    for rows in es.item_rows:
        prop = es.entity_type.property(rows.collection)
        if (prop is None or not isinstance(prop.type, Collection)
                or not isinstance(prop.type.item, ComplexType)):
            raise ValueError(f"{es.name}.{rows.collection}: item rows need a declared "
                             "collection of a complex type")
        # DateTimeOffsets would need ticks computed in SQL: lambdas on them keep the JSON path
        scalar = tuple(p for p in prop.type.item.properties if p.is_scalar and p.type != DATETIME)
        name = f"{es.table}_{column_name(rows.collection)}"
        table = Table(
            name, metadata,
            Column("tenant_id", TEXT, nullable=False),
            Column("parent_id", TEXT, nullable=False),
            Column("ordinal", Integer(), nullable=False),
            *(Column(column_name(p.name), _sql_type(p), nullable=True) for p in scalar),
            PrimaryKeyConstraint("tenant_id", "parent_id", "ordinal"),
        )
        for keys in _checked(rows, scalar):
            strings = [table.c[column_name(k)] for k in keys if _is_string(scalar, k)]
            Index(f"ix_{name}_{'_'.join(column_name(k) for k in keys)}", table.c.tenant_id,
                  *(func.lower(table.c[column_name(k)]) if _is_string(scalar, k)
                    else table.c[column_name(k)] for k in keys),
                  table.c.parent_id, *strings)
        out[rows.collection] = ItemTable(rows.collection, table, scalar, stale)
    return out


def _is_string(scalar: tuple[Property, ...], name: str) -> bool:
    return any(p.name == name and p.type == STRING for p in scalar)


def _checked(rows: ItemRows, scalar: tuple[Property, ...]) -> tuple[tuple[str, ...], ...]:
    names = {p.name for p in scalar}
    for keys in rows.indexes:
        unknown = [k for k in keys if k not in names]
        if unknown or not keys:
            raise ValueError(f"{rows.collection}: an index names {unknown or 'nothing'}, not "
                             "declared scalar properties of its items")
    return rows.indexes


REGISTRATIONS_TABLE = "app_registrations"


def registrations_table(metadata: MetaData) -> Table:
    """App registrations of graphsec's token endpoint (``graphsec app create``), by tenant.

    ``secret_sha256``: the hex SHA-256 of the client secret (None for a certificate-only
    app); ``roles`` and ``certificates`` (PEM) are JSON arrays as text; ``created`` is an ISO
    8601 UTC time. No request of the Graph API reads it."""
    return Table(
        REGISTRATIONS_TABLE, metadata,
        Column("tenant_id", TEXT, nullable=False),
        Column("client_id", TEXT, nullable=False),
        Column("display_name", Text(), nullable=False),
        Column("secret_sha256", Text(), nullable=True),
        Column("roles", Text(), nullable=False),
        Column("certificates", Text(), nullable=False),
        Column("created", Text(), nullable=False),
        PrimaryKeyConstraint("tenant_id", "client_id"),
    )


BEHAVIOUR_TABLE = "runtime_behaviour"


def behaviour_table(metadata: MetaData) -> Table:
    """The runtime behaviour set through the admin API (``PUT /_graphsec/behaviour``): one row
    (``id`` 1) with the document (JSON text, the ``--config`` TOML's shape) and ``version``,
    raised by every change, which each worker polls to notice one (docs/admin.md)."""
    return Table(
        BEHAVIOUR_TABLE, metadata,
        Column("id", Integer(), nullable=False),
        Column("version", BigInteger(), nullable=False),
        Column("document", Text(), nullable=False),
        PrimaryKeyConstraint("id"),
    )


def filter_indexes(es: EntitySet) -> list[tuple[str, str, bool]]:
    """The indexes of ``es.indexed``: (index name, column, whether the index is on the
    column's lower case, as for strings). Each is ``(tenant_id, value, <default order's
    keys>)``: one value's rows come in the default order, and a range's are sorted on keys
    the index holds (migration 0007)."""
    out = []
    for name in es.indexed:
        prop = es.entity_type.property(name)
        if prop is None or not prop.is_scalar:
            raise ValueError(f"{es.name}.{name}: only declared scalar properties are indexed")
        column = column_name(name)
        out.append((f"ix_{es.table}_{column}", column, prop.type == STRING))
    return out


def build_tables(entity_sets: tuple[EntitySet, ...]) -> tuple[MetaData, dict[str, EntityTable]]:
    """Declare one table per entity set, with the indexes the default order needs and its
    item tables, the shared history table, the app registrations' table, the runtime
    behaviour's, which item rows are built and which are stale."""
    metadata = MetaData()
    history = history_table(metadata)
    registrations_table(metadata)
    behaviour_table(metadata)
    items_built_table(metadata)
    stale = items_stale_table(metadata)
    tables: dict[str, EntityTable] = {}
    for es in entity_sets:
        scalar = tuple(p for p in es.entity_type.properties if p.is_scalar and p.name != "id")
        columns = [
            Column("tenant_id", TEXT, nullable=False),
            Column("id", TEXT, nullable=False),
            *(Column(column_name(p.name), _sql_type(p), nullable=True) for p in scalar),
            Column("doc", Text().with_variant(JSONB(), "postgresql"), nullable=False),
            # PostgreSQL only: the canonical JSON of ``doc`` as UTF-8 bytes, served as they
            # are (jsonb does not keep key order, and re-encoding every row was half of a
            # list's time; migrations 0002 and 0003)
            Column("body", Text().with_variant(LargeBinary(), "postgresql"), nullable=True),
        ]
        table = Table(es.table, metadata, *columns, PrimaryKeyConstraint("tenant_id", "id"))
        order_cols = [column_name(name) for name, _ in es.default_order]
        if order_cols != ["id"]:
            Index(f"ix_{es.table}_default_order", table.c.tenant_id,
                  *(table.c[c] for c in order_cols))
        for name, column, lowered in filter_indexes(es):
            Index(name, table.c.tenant_id,
                  func.lower(table.c[column]) if lowered else table.c[column],
                  *(table.c[c] for c in order_cols))
        tables[es.name] = EntityTable(es, table, scalar, history, item_tables(metadata, es, stale))
    return metadata, tables
