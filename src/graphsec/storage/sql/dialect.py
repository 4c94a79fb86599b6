"""The database-specific SQL that ``$filter`` needs, in one place.

:class:`SQLiteJson` is the SQLite implementation (JSON1 functions on the ``doc`` TEXT column,
DateTimeOffset columns as 100 ns ticks). A PostgreSQL (jsonb) implementation provides the same
methods; :func:`filter_dialect` picks one by SQLAlchemy dialect name.

Constants are bound parameters like every value; JSON paths are built from property names that
the schema declares or that the lexer accepted as identifiers (``[_A-Za-z]\\w*``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Protocol

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Float,
    Integer,
    Text,
    case,
    cast,
    extract,
    false,
    func,
    literal,
    null,
    or_,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TIMESTAMP
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op
from sqlalchemy.sql.selectable import TableValuedAlias

from graphsec.odata.filter_ast import Kind

JsonKind = Literal["string", "number", "true", "false", "null"]
DatePart = Literal["year", "month", "day", "hour", "minute", "second"]
TICKS_PER_SECOND = 10_000_000


class FilterDialect(Protocol):
    def extract(self, base: ColumnElement[Any], path: tuple[str, ...],
                kind: Kind) -> ColumnElement[Any]:
        """The scalar at ``path`` in the JSON ``base`` (SQL NULL when null or missing)."""

    def is_json(self, base: ColumnElement[Any], path: tuple[str, ...],
                what: JsonKind) -> ColumnElement[bool]:
        """Whether the JSON value at ``path`` is of that JSON type (never NULL; "null" also
        when missing)."""

    def each(self, base: ColumnElement[Any], path: tuple[str, ...],
             name: str) -> TableValuedAlias:
        """The items of the JSON array at ``path``, as rows with a ``value`` column."""

    def item(self, items: TableValuedAlias, kind: Kind) -> ColumnElement[Any]:
        """A row's item as a scalar of ``kind`` (or as JSON, for complex items)."""

    def text_ticks(self, text: ColumnElement[Any]) -> ColumnElement[int]:
        """Ticks of a stored DateTimeOffset text (UTC, ``…THH:MM:SS[.f{1,7}]Z``)."""

    def date_part(self, ticks: ColumnElement[Any], part: DatePart) -> ColumnElement[int]:
        """The UTC year/month/... of a tick count."""

    def greatest(self, a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
        """The larger of two numbers (NULL if either is NULL)."""

    def to_int(self, value: ColumnElement[Any]) -> ColumnElement[int]:
        """A number truncated toward zero."""

    def index_of(self, text: ColumnElement[Any], part: ColumnElement[Any]) -> ColumnElement[int]:
        """1-based position of ``part`` in ``text``, 0 when absent."""

    def unindexed(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        """``column`` as an expression the planner does not look up in an index (a page that
        tests the ids of a set read in the default order's index, not the other way round)."""


def _const(value: int | str) -> ColumnElement[Any]:
    return literal(value, BigInteger() if isinstance(value, int) else Text())


def _floor_div(a: ColumnElement[Any], n: int) -> ColumnElement[Any]:
    """``a`` divided by the positive ``n``, rounded down (also for negative ``a``)."""
    rem = ((a.op("%")(_const(n))).op("+")(_const(n))).op("%")(_const(n))
    return (a.op("-")(rem)).op("/")(_const(n))


def _ticks(seconds: ColumnElement[Any], text: ColumnElement[Any]) -> ColumnElement[int]:
    """Ticks from whole seconds and the stored text's fraction (``…:SS.fffffffZ``), all 7
    digits of it (neither database's timestamps keep 100 ns)."""
    digits = func.substr(func.substr(text, 21, func.length(text) - 21).op("||")("0000000"),
                         1, 7)
    fraction = case((func.substr(text, 20, 1) == ".", cast(digits, BigInteger)),
                    else_=_const(0))
    return (seconds.op("*")(_const(TICKS_PER_SECOND))).op("+")(fraction)


class SQLiteJson:
    _FORMATS: ClassVar[dict[str, str]] = {
        "year": "%Y", "month": "%m", "day": "%d", "hour": "%H", "minute": "%M", "second": "%S"}

    @staticmethod
    def _path(path: tuple[str, ...]) -> str:
        return "$" + "".join(f'."{p}"' for p in path)

    def extract(self, base: ColumnElement[Any], path: tuple[str, ...],
                kind: Kind) -> ColumnElement[Any]:
        return func.json_extract(base, self._path(path))

    def is_json(self, base: ColumnElement[Any], path: tuple[str, ...],
                what: JsonKind) -> ColumnElement[bool]:
        json_type = func.coalesce(func.json_type(base, self._path(path)), "null")
        if what == "number":
            return or_(json_type == "integer", json_type == "real")
        return json_type == {"string": "text"}.get(what, what)

    def each(self, base: ColumnElement[Any], path: tuple[str, ...],
             name: str) -> TableValuedAlias:
        return func.json_each(base, self._path(path)).table_valued("value", name=name)

    def item(self, items: TableValuedAlias, kind: Kind) -> ColumnElement[Any]:
        return items.c.value

    def text_ticks(self, text: ColumnElement[Any]) -> ColumnElement[int]:
        return _ticks(cast(func.strftime("%s", func.substr(text, 1, 19)), BigInteger), text)

    def date_part(self, ticks: ColumnElement[Any], part: DatePart) -> ColumnElement[int]:
        seconds = _floor_div(ticks, TICKS_PER_SECOND)
        return cast(func.strftime(self._FORMATS[part], seconds, "unixepoch"), Integer)

    def greatest(self, a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
        return func.max(a, b)

    def to_int(self, value: ColumnElement[Any]) -> ColumnElement[int]:
        return cast(value, BigInteger)

    def index_of(self, text: ColumnElement[Any], part: ColumnElement[Any]) -> ColumnElement[int]:
        return func.instr(text, part)

    def unindexed(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        # SQLite's unary + (a no-op on any value) is its documented way to keep a term off
        # an index
        return UnaryExpression(column, operator=custom_op("+"), type_=column.type)


class PostgresJson:
    """PostgreSQL: ``doc`` is ``jsonb``; values are taken out as text and cast to their kind
    only where ``jsonb_typeof`` says they are of it (``CASE``, because PostgreSQL does not
    promise to evaluate an ``AND``'s guard before the cast); DateTimeOffsets keep all 7 digits
    by reading ticks from the stored text, as on SQLite."""

    _CASTS: ClassVar[dict[Kind, tuple[str, Any]]] = {
        Kind.INT: ("number", BigInteger()),
        Kind.DOUBLE: ("number", Float()),
        Kind.BOOLEAN: ("boolean", Boolean()),
    }

    @staticmethod
    def _path(path: tuple[str, ...]) -> ColumnElement[Any]:
        return literal(list(path), ARRAY(Text()))

    def _json(self, base: ColumnElement[Any], path: tuple[str, ...]) -> ColumnElement[Any]:
        return base.op("#>")(self._path(path)) if path else base

    def _text(self, base: ColumnElement[Any], path: tuple[str, ...]) -> ColumnElement[Any]:
        return base.op("#>>")(self._path(path))

    def _typed(self, json: ColumnElement[Any], text: ColumnElement[Any],
               kind: Kind) -> ColumnElement[Any]:
        if kind in self._CASTS:
            json_type, sql_type = self._CASTS[kind]
            return case((func.jsonb_typeof(json) == json_type, cast(text, sql_type)))
        if kind in (Kind.COMPLEX, Kind.COLLECTION):
            return func.nullif(json, cast(literal("null"), JSONB()))  # JSON null is SQL NULL
        return case((func.jsonb_typeof(json) == "string", text))

    def extract(self, base: ColumnElement[Any], path: tuple[str, ...],
                kind: Kind) -> ColumnElement[Any]:
        return self._typed(self._json(base, path), self._text(base, path), kind)

    def is_json(self, base: ColumnElement[Any], path: tuple[str, ...],
                what: JsonKind) -> ColumnElement[bool]:
        json = self._json(base, path)
        json_type = func.coalesce(func.jsonb_typeof(json), "null")
        if what in ("true", "false"):
            same = json == cast(literal(what), JSONB())
            return func.coalesce(same, false(), type_=Boolean)
        return json_type == what

    def each(self, base: ColumnElement[Any], path: tuple[str, ...],
             name: str) -> TableValuedAlias:
        json = self._json(base, path)
        array = case((func.jsonb_typeof(json) == "array", json),
                     else_=cast(literal("[]"), JSONB()))
        return func.jsonb_array_elements(array).table_valued("value", name=name)

    def item(self, items: TableValuedAlias, kind: Kind) -> ColumnElement[Any]:
        value = items.c.value
        return self._typed(value, self._text(value, ()), kind)

    def text_ticks(self, text: ColumnElement[Any]) -> ColumnElement[int]:
        stamp = cast(func.substr(text, 1, 19), TIMESTAMP())
        return _ticks(cast(func.floor(extract("epoch", stamp)), BigInteger), text)

    def date_part(self, ticks: ColumnElement[Any], part: DatePart) -> ColumnElement[int]:
        seconds = _floor_div(ticks, TICKS_PER_SECOND)
        moment = func.timezone("UTC", func.to_timestamp(seconds))
        return cast(func.floor(extract(part, moment)), Integer)

    def greatest(self, a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
        # PostgreSQL's greatest() skips NULLs; OData's functions give null for a null argument
        return case((or_(a.is_(None), b.is_(None)), null()), else_=func.greatest(a, b))

    def to_int(self, value: ColumnElement[Any]) -> ColumnElement[int]:
        return cast(func.trunc(value), BigInteger)

    def index_of(self, text: ColumnElement[Any], part: ColumnElement[Any]) -> ColumnElement[int]:
        return func.strpos(text, part)

    def unindexed(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        return column  # PostgreSQL's planner weighs a semi-join itself


def filter_dialect(name: str) -> FilterDialect:
    """The implementation for a SQLAlchemy dialect name."""
    if name == "sqlite":
        return SQLiteJson()
    if name == "postgresql":
        return PostgresJson()
    raise NotImplementedError(f"$filter is not implemented for the '{name}' dialect.")
