"""Compile a typed ``$filter`` (:mod:`graphsec.odata.filter_ast`) to a SQLAlchemy condition.

Top-level scalar properties use their typed columns (DateTimeOffset as ticks), everything else
is read from ``doc`` with the database's JSON functions; ``any``/``all`` become correlated
``EXISTS`` over the array's items. Every client value is a bound parameter; ``LIKE`` patterns
are escaped (``ESCAPE '\\'``). The semantics are those documented in ``filter_ast``; the only
subtle part is keeping conditions two-valued: SQL comparisons may be NULL, which a ``WHERE``
treats as false, so a condition that may be NULL is wrapped in ``coalesce(…, false)`` before it
is negated (``not``, ``all``).

A lambda over a collection whose items are kept as rows (``items.py``), for a tenant whose rows
are complete (``ready``), and whose predicate reads only declared scalar properties of the item,
is ``id IN (SELECT parent_id FROM <items> WHERE tenant_id = :tenant AND <predicate>)`` (``all``:
``NOT IN`` the items that do not satisfy it), the item's properties read from typed columns.
The documents written since their rows were made (``item_rows_stale``) are left out of that
set, and their own lambda, with the JSON functions on their documents, is added to it
(``UNION ALL``): the answer is exact whether or not a refresh has run.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Float,
    Integer,
    Select,
    Text,
    and_,
    bindparam,
    cast,
    false,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    true,
    type_coerce,
    union_all,
)

from graphsec.odata.filter_ast import (
    And,
    Arith,
    Compare,
    Const,
    FilterExpr,
    Func,
    In,
    Kind,
    Lambda,
    Literal,
    Match,
    Negate,
    Not,
    Or,
    Predicate,
    Prop,
    Value,
)
from graphsec.storage.sql.dialect import FilterDialect, JsonKind, filter_dialect
from graphsec.storage.sql.items import nodes
from graphsec.storage.sql.tables import EntityTable, ItemTable, column_name

Sql = ColumnElement[Any]
Cond = tuple[ColumnElement[bool], bool]
"""A compiled condition and whether it may be NULL."""

_MIRROR = {"eq": "eq", "ne": "ne", "gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}
_SQL_OPS = {"eq": "=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_ARITH = {"add": "+", "sub": "-", "mul": "*"}
_JSON_ONLY = (Kind.COMPLEX, Kind.COLLECTION, Kind.UNTYPED)


def compile_filter(expr: FilterExpr, et: EntityTable, dialect: str,
                   ready: frozenset[str] = frozenset(), page: bool = False) -> ColumnElement[bool]:
    """The SQL condition selecting the rows of ``et`` that ``expr`` holds for; ``ready``: the
    collections whose item rows are complete for the tenant the statement is bound to;
    ``page``: for a page (read in an order and limited), not a count."""
    return _Compiler(et, filter_dialect(dialect), ready, page).condition(expr)[0]


def item_count(expr: FilterExpr, et: EntityTable, dialect: str,
               ready: frozenset[str]) -> Select[Any] | None:
    """The count of the entities ``expr`` selects, from item rows alone, when ``expr`` is one
    ``any`` lambda that item rows answer: the distinct entities of the matching items (each
    item row belongs to an entity of its tenant, the triggers see to it), without a probe of
    the entity table per entity. None otherwise."""
    if not isinstance(expr, Lambda) or expr.quantifier != "any":
        return None
    compiler = _Compiler(et, filter_dialect(dialect), ready)
    it = compiler._item_table(expr)
    if it is None:
        return None
    rows, parents = compiler._parents(it)
    if expr.predicate is not None:
        assert expr.variable is not None
        compiler.rows[expr.variable] = rows
        parents = parents.where(compiler.condition(expr.predicate)[0])
    fresh = parents.with_only_columns(func.count(rows.c.parent_id.distinct()))
    stale = compiler._stale_documents(expr, it).with_only_columns(func.count())
    return select(fresh.scalar_subquery() + stale.scalar_subquery())


def like_escape(text: str) -> str:
    """``text`` with ``\\``, ``%`` and ``_`` escaped for ``LIKE … ESCAPE '\\'``."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _bind(value: Any, kind: Kind) -> Sql:
    if value is None:
        return null()
    if isinstance(value, bool):
        return literal(value, Boolean())
    if isinstance(value, int):
        return literal(value, BigInteger())
    if isinstance(value, float):
        return literal(value, Float())
    return literal(value, Text())


def _prefix_range(prefix: str) -> tuple[str, str] | None:
    """The strings that start with ``prefix`` ignoring case, as the range [low, high) of their
    lower case, when the prefix is ASCII (the only letters ``lower()`` changes on both
    backends: SQLite's and PostgreSQL's under the "C" collation, the columns' own): a range an
    index of ``lower(column)`` reads instead of every row. Both backends order strings by code
    point, so every string that starts with ``low`` is at least ``low`` and less than ``high``,
    ``low`` with its last character's successor. The ``LIKE`` stays, as the test itself."""
    if not prefix or not prefix.isascii():
        return None
    low = prefix.lower()
    return low, low[:-1] + chr(ord(low[-1]) + 1)


def _definite(expr: ColumnElement[bool]) -> Cond:
    return expr, False


class _Compiler:
    def __init__(self, et: EntityTable, dialect: FilterDialect,
                 ready: frozenset[str] = frozenset(), page: bool = False,
                 table: Any = None) -> None:
        self.et = et
        self.table = et.table if table is None else table
        """The entity rows the filter reads: ``et``'s table, or an alias of it."""
        self.d = dialect
        self.ready = ready
        self.page = page
        self.items: dict[str, Sql] = {}
        self.rows: dict[str, Any] = {}
        """Lambda variables bound to a row of an item table (its alias)."""
        self.lambdas = 0

    # ---- conditions -------------------------------------------------------------------------
    def condition(self, p: Predicate) -> Cond:
        if isinstance(p, Compare):
            return self._compare(p)
        if isinstance(p, In):
            return self._in(p)
        if isinstance(p, Match):
            return self._match(p)
        if isinstance(p, And | Or):
            parts = [self.condition(item) for item in p.items]
            join = and_ if isinstance(p, And) else or_
            return join(*(c for c, _ in parts)), any(n for _, n in parts)
        if isinstance(p, Not):
            return _definite(not_(self.definite(p.operand)))
        if isinstance(p, Lambda):
            return _definite(self._lambda(p))
        assert isinstance(p, Const)
        return _definite(true() if p.value else false())

    def definite(self, p: Predicate) -> ColumnElement[bool]:
        """``p`` as a condition that is never NULL."""
        cond, nullable = self.condition(p)
        return func.coalesce(cond, false(), type_=Boolean) if nullable else cond

    def _compare(self, c: Compare) -> Cond:
        if c.right.kind is Kind.UNTYPED:
            return self._dynamic(_MIRROR[c.op], c.right, c.left)
        if c.left.kind is Kind.UNTYPED:
            return self._dynamic(c.op, c.left, c.right)
        if c.left.kind is Kind.NULL and c.right.kind is Kind.NULL:
            return _definite(true() if c.op == "eq" else false())
        for value, other in ((c.left, c.right), (c.right, c.left)):
            if other.kind is Kind.NULL:
                sql = self.value(value)
                return _definite(sql.is_(None) if c.op == "eq" else sql.is_not(None))
        left, right = self._operand(c.left), self._operand(c.right)
        if c.op == "ne":
            return _definite(left.is_distinct_from(right))
        if c.op == "eq" and not isinstance(c.left, Literal) and not isinstance(c.right, Literal):
            return _definite(left.is_not_distinct_from(right))
        return left.op(_SQL_OPS[c.op], is_comparison=True)(right), True

    def _operand(self, v: Value) -> Sql:
        sql = self.value(v)
        return func.lower(sql) if v.kind is Kind.STRING else sql

    def _in(self, p: In) -> Cond:
        if p.value.kind is Kind.UNTYPED:
            conds = [self._dynamic("eq", p.value, item)[0] for item in p.items]
            return _definite(or_(*conds))
        value = self._operand(p.value)
        items = [self._operand(i) for i in p.items if i.kind is not Kind.NULL]
        parts: list[ColumnElement[bool]] = [value.in_(items)] if items else []
        if len(items) < len(p.items):
            parts.append(self.value(p.value).is_(None))
        return or_(*parts), bool(items)

    def _match(self, m: Match) -> Cond:
        if m.pattern.kind is Kind.NULL or m.subject.kind is Kind.NULL:
            return _definite(false())
        if isinstance(m.pattern, Literal):
            assert isinstance(m.pattern.value, str)
            escaped: Sql = _bind(like_escape(m.pattern.value), Kind.STRING)
        else:
            escaped = self.value(m.pattern)
            for char in ("\\", "%", "_"):
                escaped = func.replace(escaped, char, "\\" + char)
        if m.fn in ("endswith", "contains"):
            escaped = literal("%", Text()).op("||")(escaped)
        if m.fn in ("startswith", "contains"):
            escaped = escaped.op("||")(literal("%", Text()))
        subject = (self._as(m.subject, Kind.STRING) if m.subject.kind is Kind.UNTYPED
                   else self.value(m.subject))
        cond: ColumnElement[bool] = func.lower(subject).like(func.lower(escaped), escape="\\")
        if m.subject.kind is Kind.UNTYPED:
            return _definite(and_(self._is_json(m.subject, "string"), cond))
        if m.fn == "startswith" and isinstance(m.pattern, Literal) and self._column(m.subject):
            bounds = _prefix_range(m.pattern.value)  # type: ignore[arg-type]
            if bounds is not None:
                low = func.lower(subject)
                cond = and_(low >= _bind(bounds[0], Kind.STRING),
                            low < _bind(bounds[1], Kind.STRING), cond)
        return cond, True

    def _dynamic(self, op: str, prop: Value, other: Value) -> Cond:
        """``prop op literal`` for an untyped (dynamic) ``prop``: only a JSON value of the
        literal's type can match; ``ne`` is the negation of ``eq``."""
        assert isinstance(other, Literal)
        if op == "ne":
            return _definite(not_(self._dynamic("eq", prop, other)[0]))
        if other.kind is Kind.NULL:
            return _definite(self._is_json(prop, "null"))
        if other.kind is Kind.BOOLEAN:
            return _definite(self._is_json(prop, "true" if other.value else "false"))
        if other.kind in (Kind.STRING, Kind.GUID):
            guard = self._is_json(prop, "string")
            cond = func.lower(self._as(prop, Kind.STRING)).op(_SQL_OPS[op], is_comparison=True)(
                func.lower(_bind(other.value, Kind.STRING)))
        else:
            guard = self._is_json(prop, "number")
            cond = self._as(prop, Kind.DOUBLE).op(_SQL_OPS[op], is_comparison=True)(
                _bind(other.value, other.kind))
        return _definite(and_(guard, cond))

    def _as(self, prop: Value, kind: Kind) -> Sql:
        """An untyped (dynamic) property's value read as ``kind``."""
        assert isinstance(prop, Prop)
        base, path = self._json_base(prop)
        return self.d.extract(base, path, kind) if path else base

    def _is_json(self, prop: Value, what: JsonKind) -> ColumnElement[bool]:
        assert isinstance(prop, Prop)
        base, path = self._json_base(prop)
        return self.d.is_json(base, path, what)

    def _lambda(self, node: Lambda) -> ColumnElement[bool]:
        it = self._item_table(node)
        if it is not None:
            return self._item_rows(node, it)
        base, path = self._json_base(node.collection)
        items = self.d.each(base, path, f"j{self.lambdas}")
        self.lambdas += 1
        # correlate everything else: the entity row and enclosing lambdas' items, at any depth
        query = select(literal(1)).select_from(items).correlate_except(items)
        if node.predicate is None:
            return query.exists()
        assert node.variable is not None
        self.items[node.variable] = self.d.item(items, node.item_kind)
        try:
            if node.quantifier == "any":
                return query.where(self.condition(node.predicate)[0]).exists()
            return not_(query.where(not_(self.definite(node.predicate))).exists())
        finally:
            del self.items[node.variable]

    def _item_table(self, node: Lambda) -> ItemTable | None:
        """The item table that answers ``node``, if any: the tenant's rows are complete, and
        the predicate reads nothing but the item's columns and constants."""
        c = node.collection
        if c.root is not None or len(c.path) != 1 or c.path[0] not in self.ready:
            return None
        it = self.et.items[c.path[0]]
        if node.predicate is None:
            return it
        columns = {p.name for p in it.scalar}
        for n in nodes(node.predicate):
            if isinstance(n, Lambda):
                return None
            if isinstance(n, Prop) and (n.root != node.variable or len(n.path) != 1
                                        or n.path[0] not in columns or n.kind in _JSON_ONLY):
                return None
        return it

    def _parents(self, it: ItemTable) -> tuple[Any, Select[Any]]:
        """The item rows of the tenant's documents that are not stale, and their parents."""
        rows = it.table.alias(f"r{self.lambdas}")
        self.lambdas += 1
        # a test of each item against the stale list doubled the work of the page the
        # benchmark reads (SQLite); with none stale, one test of the list's emptiness
        # (evaluated once) skips it
        return rows, select(rows.c.parent_id).where(
            rows.c.tenant_id == bindparam("tenant", ""),
            or_(not_(self._stale_ids(it).exists()),
                rows.c.parent_id.not_in(self._stale_ids(it))))

    def _stale_ids(self, it: ItemTable) -> Select[Any]:
        stale = it.stale.alias(f"s{self.lambdas}")
        self.lambdas += 1
        return select(stale.c.parent_id).where(stale.c.tenant_id == bindparam("tenant", ""),
                                               stale.c["items"] == literal(it.table.name, Text()))

    def _stale_documents(self, node: Lambda, it: ItemTable, holds: bool = True) -> Select[Any]:
        """The ids of the tenant's stale documents for which ``node``, read from their JSON,
        holds (``holds``) or does not."""
        docs = self.et.table.alias(f"sd{self.lambdas}")
        self.lambdas += 1
        json = _Compiler(self.et, self.d, table=docs)
        json.lambdas = self.lambdas
        condition = json._lambda(node)
        self.lambdas = json.lambdas
        return select(docs.c.id).where(docs.c.tenant_id == bindparam("tenant", ""),
                                       docs.c.id.in_(self._stale_ids(it)),
                                       condition if holds else not_(condition))

    def _item_rows(self, node: Lambda, it: ItemTable) -> ColumnElement[bool]:
        rows, parents = self._parents(it)
        # A page reads the entities in its order and tests each id against the set of those
        # the items select (SQLite: 0.18 ms for the bench's page of 101 out of 433, against
        # 0.42 ms probing each of the 433 and sorting them); a count probes (it needs them all).
        # The stale documents' items come from their JSON (their rows may be an older
        # version's, or missing).
        target = self.d.unindexed(self.table.c.id) if self.page else self.table.c.id
        if node.predicate is None:
            return target.in_(union_all(parents, self._stale_documents(node, it)))
        assert node.variable is not None
        self.rows[node.variable] = rows
        try:
            if node.quantifier == "any":
                return target.in_(union_all(parents.where(self.condition(node.predicate)[0]),
                                            self._stale_documents(node, it)))
            return target.not_in(union_all(
                parents.where(not_(self.definite(node.predicate))),
                self._stale_documents(node, it, holds=False)))
        finally:
            del self.rows[node.variable]

    # ---- values -----------------------------------------------------------------------------
    def _json_base(self, prop: Prop) -> tuple[Sql, tuple[str, ...]]:
        if prop.root is None:
            return self.table.c.doc, prop.path
        return self.items[prop.root], prop.path

    def value(self, v: Value) -> Sql:
        if isinstance(v, Literal):
            return _bind(v.value, v.kind)
        if isinstance(v, Prop):
            return self._prop(v)
        if isinstance(v, Arith):
            return self._arith(v)
        if isinstance(v, Negate):
            return -self._numeric(v.operand)
        return self._func(v)

    def _prop(self, p: Prop) -> Sql:
        if p.root is not None and p.root in self.rows:
            return self.rows[p.root].c[column_name(p.path[0])]  # type: ignore[no-any-return]
        if self._column(p):
            name = p.path[0]
            return self.table.c.id if name == "id" else self.table.c[column_name(name)]
        base, path = self._json_base(p)
        sql = self.d.extract(base, path, p.kind) if path else base
        return self.d.text_ticks(sql) if p.kind is Kind.DATETIME else sql

    def _column(self, v: Value) -> bool:
        """Whether ``v`` is read from a typed column (which compares by code point: "C")."""
        return (isinstance(v, Prop) and (v.root is None or v.root in self.rows)
                and len(v.path) == 1 and v.kind not in _JSON_ONLY)

    def _numeric(self, v: Value) -> Sql:
        return type_coerce(self.value(v), BigInteger() if v.kind is Kind.INT else Float())

    def _arith(self, a: Arith) -> Sql:
        left, right = self._numeric(a.left), self._numeric(a.right)
        if a.op in _ARITH:
            return left.op(_ARITH[a.op])(right)
        divisor = func.nullif(right, 0)
        if a.op == "div" or a.kind is Kind.INT:
            return left.op("/" if a.op == "div" else "%")(divisor)
        return left.op("-")(right.op("*")(self.d.to_int(left.op("/")(divisor))))

    def _func(self, f: Func) -> Sql:
        args = [self.value(a) for a in f.args]
        if f.name in ("tolower", "toupper", "trim", "length"):
            name = {"tolower": "lower", "toupper": "upper"}.get(f.name, f.name)
            result: Sql = getattr(func, name)(args[0])
            return result
        if f.name == "concat":
            return args[0].op("||")(args[1])
        if f.name == "indexof":
            return self.d.index_of(func.lower(args[0]), func.lower(args[1])).op("-")(literal(1))
        if f.name == "substring":
            start = cast(self.d.greatest(args[1], literal(0)).op("+")(literal(1)), Integer)
            if len(args) == 2:
                return func.substr(args[0], start)
            return func.substr(args[0], start, cast(self.d.greatest(args[2], literal(0)), Integer))
        return self.d.date_part(args[0], f.name)  # type: ignore[arg-type]


__all__ = ["compile_filter", "like_escape"]
