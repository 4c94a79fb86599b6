"""The database-specific SQL that ``$filter`` needs, in one place.

:class:`SQLiteJson` is the SQLite implementation (JSON1 functions on the ``doc`` TEXT column,
DateTimeOffset columns as 100 ns ticks). A PostgreSQL (jsonb) implementation provides the same
methods; :func:`filter_dialect` picks one by SQLAlchemy dialect name.

Constants are bound parameters like every value; JSON paths are built from property names that
the schema declares or that the lexer accepted as identifiers (``[_A-Za-z]\\w*``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Protocol

from sqlalchemy import BigInteger, ColumnElement, Integer, Text, case, cast, func, literal, or_
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


def _const(value: int | str) -> ColumnElement[Any]:
    return literal(value, BigInteger() if isinstance(value, int) else Text())


def _floor_div(a: ColumnElement[Any], n: int) -> ColumnElement[Any]:
    """``a`` divided by the positive ``n``, rounded down (also for negative ``a``)."""
    rem = ((a.op("%")(_const(n))).op("+")(_const(n))).op("%")(_const(n))
    return (a.op("-")(rem)).op("/")(_const(n))


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
        seconds = cast(func.strftime("%s", func.substr(text, 1, 19)), BigInteger)
        digits = func.substr(func.substr(text, 21, func.length(text) - 21).op("||")("0000000"),
                             1, 7)
        fraction = case((func.substr(text, 20, 1) == ".", cast(digits, BigInteger)),
                        else_=_const(0))
        return (seconds.op("*")(_const(TICKS_PER_SECOND))).op("+")(fraction)

    def date_part(self, ticks: ColumnElement[Any], part: DatePart) -> ColumnElement[int]:
        seconds = _floor_div(ticks, TICKS_PER_SECOND)
        return cast(func.strftime(self._FORMATS[part], seconds, "unixepoch"), Integer)

    def greatest(self, a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
        return func.max(a, b)

    def to_int(self, value: ColumnElement[Any]) -> ColumnElement[int]:
        return cast(value, BigInteger)


def filter_dialect(name: str) -> FilterDialect:
    """The implementation for a SQLAlchemy dialect name."""
    if name == "sqlite":
        return SQLiteJson()
    raise NotImplementedError(f"$filter is not implemented for the '{name}' dialect yet.")
