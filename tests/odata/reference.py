"""A reference evaluator of graphsec's typed ``$filter`` tree on plain dicts, in Python.

It spells out the semantics documented in ``graphsec.odata.filter_ast`` as directly as
possible, so that property tests can compare what the SQL returns with what it should. It also
sorts documents the way ``$orderby`` does (ascending nulls first, descending nulls last, strings
by code point, which is SQLite's BINARY order of UTF-8 text).
"""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime, timedelta
from typing import Any

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
    Prop,
    Value,
)
from graphsec.odata.query import OrderKey
from graphsec.schema.values import parse_datetime

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
Env = dict[str, Any]


def lower(text: str) -> str:
    """SQLite's ``lower()``: ASCII letters only."""
    return text.translate(_ASCII_LOWER)


def walk(start: Any, path: tuple[str, ...]) -> Any:
    current = start
    for name in path:
        if not isinstance(current, dict):
            return None
        current = current.get(name)
    return current


def _cmp(op: str, a: Any, b: Any) -> bool:
    result: bool = {"eq": a == b, "gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[op]
    return result


def _trunc_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def evaluate(expr: FilterExpr, doc: dict[str, Any], env: Env | None = None) -> bool:
    env = env or {}
    if isinstance(expr, And):
        return all(evaluate(p, doc, env) for p in expr.items)
    if isinstance(expr, Or):
        return any(evaluate(p, doc, env) for p in expr.items)
    if isinstance(expr, Not):
        return not evaluate(expr.operand, doc, env)
    if isinstance(expr, Const):
        return expr.value
    if isinstance(expr, Compare):
        return compare(expr.op, expr.left, expr.right, doc, env)
    if isinstance(expr, In):
        return any(compare("eq", expr.value, item, doc, env) for item in expr.items)
    if isinstance(expr, Match):
        return _match(expr, doc, env)
    assert isinstance(expr, Lambda)
    items = walk(doc, expr.collection.path) if expr.collection.root is None else walk(
        env[expr.collection.root], expr.collection.path)
    items = items or []
    if expr.predicate is None:
        return len(items) > 0
    assert expr.variable is not None
    results = (evaluate(expr.predicate, doc, {**env, expr.variable: i}) for i in items)
    return any(results) if expr.quantifier == "any" else all(results)


def _match(expr: Match, doc: dict[str, Any], env: Env) -> bool:
    subject, pattern = value(expr.subject, doc, env), value(expr.pattern, doc, env)
    if not isinstance(subject, str) or pattern is None:
        return False
    s, p = lower(subject), lower(pattern)
    return {"startswith": s.startswith(p), "endswith": s.endswith(p), "contains": p in s}[
        expr.fn]


def _dynamic(op: str, raw: Any, literal: Literal) -> bool:
    if op == "ne":
        return not _dynamic("eq", raw, literal)
    if literal.kind is Kind.NULL:
        return raw is None
    if literal.kind is Kind.BOOLEAN:
        return isinstance(raw, bool) and raw == literal.value
    if literal.kind in (Kind.STRING, Kind.GUID):
        assert isinstance(literal.value, str)
        return isinstance(raw, str) and _cmp(op, lower(raw), lower(literal.value))
    is_number = isinstance(raw, int | float) and not isinstance(raw, bool)
    return is_number and _cmp(op, raw, literal.value)


_MIRROR = {"eq": "eq", "ne": "ne", "gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}


def compare(op: str, left: Value, right: Value, doc: dict[str, Any], env: Env) -> bool:
    if right.kind is Kind.UNTYPED:
        return compare(_MIRROR[op], right, left, doc, env)
    if left.kind is Kind.UNTYPED:
        assert isinstance(right, Literal)
        return _dynamic(op, value(left, doc, env), right)
    a, b = value(left, doc, env), value(right, doc, env)
    if op in ("eq", "ne"):
        if a is None or b is None:
            same = a is None and b is None
        else:
            same = (lower(a) == lower(b)) if isinstance(a, str) else a == b
        return same if op == "eq" else not same
    if a is None or b is None:
        return False
    if isinstance(a, str):
        a, b = lower(a), lower(b)
    return _cmp(op, a, b)


def value(v: Value, doc: dict[str, Any], env: Env) -> Any:
    if isinstance(v, Literal):
        return v.value
    if isinstance(v, Prop):
        raw = walk(doc, v.path) if v.root is None else walk(env[v.root], v.path)
        if v.kind is Kind.DATETIME and raw is not None:
            return parse_datetime(raw).ticks
        return raw
    if isinstance(v, Negate):
        x = value(v.operand, doc, env)
        return None if x is None else -x
    if isinstance(v, Arith):
        return _arith(v, value(v.left, doc, env), value(v.right, doc, env))
    assert isinstance(v, Func)
    return _func(v.name, [value(a, doc, env) for a in v.args])


def _arith(v: Arith, a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    if v.op == "add":
        return a + b
    if v.op == "sub":
        return a - b
    if v.op == "mul":
        return a * b
    if b == 0:
        return None
    if v.kind is Kind.INT:
        q = _trunc_div(a, b)
        return q if v.op == "div" else a - b * q
    if v.op == "div":
        return a / b
    return a - b * int(a / b)


def _func(name: str, args: list[Any]) -> Any:
    if any(a is None for a in args):
        return None
    s = args[0]
    if name == "tolower":
        return lower(s)
    if name == "toupper":
        return s.translate(_ASCII_UPPER)
    if name == "trim":
        return s.strip(" ")
    if name == "length":
        return len(s)
    if name == "concat":
        return s + args[1]
    if name == "indexof":
        return lower(s).find(lower(args[1]))
    if name == "substring":
        start = max(args[1], 0)
        return s[start:] if len(args) == 2 else s[start:start + max(args[2], 0)]
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=math.floor(s / 10**7))
    return getattr(moment, name)


def matching_ids(expr: FilterExpr, docs: list[dict[str, Any]]) -> set[str]:
    return {d["id"] for d in docs if evaluate(expr, d)}


def sort_value(doc: dict[str, Any], path: tuple[str, ...]) -> Any:
    raw = walk(doc, path)
    if path == ("createdDateTime",) and raw is not None:
        return parse_datetime(raw).ticks
    return raw


def sorted_ids(docs: list[dict[str, Any]], order: tuple[OrderKey, ...]) -> list[str]:
    """Ids in ``$orderby`` order: ascending nulls first, descending nulls last."""

    def cmp(a: dict[str, Any], b: dict[str, Any]) -> int:
        for key in order:
            va, vb = sort_value(a, key.path), sort_value(b, key.path)
            if va == vb:
                continue
            if va is None or vb is None:
                first = -1 if va is None else 1
                return -first if key.descending else first
            c: int = (va > vb) - (va < vb)
            return -c if key.descending else c
        return 0

    return [d["id"] for d in sorted(docs, key=functools.cmp_to_key(cmp))]
