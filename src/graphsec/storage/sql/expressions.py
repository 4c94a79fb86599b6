"""SQL expressions for property paths, shared by sorting and filtering."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Boolean, ColumnElement, Float, cast, func

from graphsec.errors import BadRequest
from graphsec.schema.types import ComplexType, EnumType, Primitive
from graphsec.storage.sql.tables import EntityTable, column_name


def sort_expression(et: EntityTable, path: tuple[str, ...], dialect: str) -> ColumnElement[Any]:
    """The expression a property path sorts by: a typed column for a top-level scalar property,
    the JSON value inside ``doc`` for a scalar inside a single complex property."""
    entity = et.entity_set.entity_type
    head = entity.property(path[0])
    if head is None:
        raise BadRequest(f"Could not find a property named '{path[0]}' on type '{entity}'.")
    if len(path) == 1:
        if head.name == "id":
            return et.table.c.id
        if not head.is_scalar:
            raise BadRequest(f"The property '{head.name}' cannot be used in $orderby: "
                             "only single primitive values can be sorted on.")
        return et.table.c[column_name(head.name)]
    current = head.type
    for segment in path[1:]:
        if not isinstance(current, ComplexType):
            raise BadRequest(f"The path '{'/'.join(path)}' cannot be used in $orderby: "
                             f"'{segment}' is not inside a single complex value.")
        prop = current.property(segment)
        if prop is None:
            raise BadRequest(f"Could not find a property named '{segment}' on type '{current}'.")
        current = prop.type
    if not isinstance(current, Primitive | EnumType):
        raise BadRequest(f"The path '{'/'.join(path)}' does not lead to a primitive value.")
    value = json_scalar(et, path, dialect)
    if dialect == "postgresql":  # text out of jsonb: sort numbers as numbers, text bytewise
        name = current.name if isinstance(current, Primitive) else "Edm.String"
        if name in _PG_CASTS:
            return cast(value, _PG_CASTS[name])
        return value.collate("C")
    return value


_PG_CASTS: dict[str, Any] = {"Edm.Double": Float(), "Edm.Int32": BigInteger(),
                             "Edm.Int64": BigInteger(), "Edm.Boolean": Boolean()}


def json_scalar(et: EntityTable, path: tuple[str, ...], dialect: str) -> ColumnElement[Any]:
    """The scalar at ``path`` inside ``doc``: SQLite's ``json_extract`` (typed), PostgreSQL's
    ``jsonb_extract_path_text`` (text)."""
    if dialect == "postgresql":
        return func.jsonb_extract_path_text(et.table.c.doc, *path)
    return func.json_extract(et.table.c.doc, "$." + ".".join(f'"{p}"' for p in path))
