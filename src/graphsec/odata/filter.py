"""``$filter``: parsed with odata-query, type-checked against the entity type, returned as
graphsec's typed tree (:mod:`graphsec.odata.filter_ast`). Pure: no I/O, no SQL.

Every problem is a :class:`~graphsec.errors.BadRequest` naming it: a syntax error with its
position, an unknown property with the type searched, a literal or function of the wrong type.
No exception of the parsing library escapes, and the input is bounded (4096 characters by the
caller; here 32 levels of nesting, 500 nodes, 32 parentheses, 32 path segments), so neither
deep nesting nor long chains can exhaust the stack.

Lambdas nest at most :data:`MAX_LAMBDA_DEPTH` (2) deep. Each level multiplies the work by the
length of the collection it ranges over (five levels over 20 control scores: 3.2 million item
tests per score), so this bound, and not the node count, is what keeps a filter's cost
proportional to the data. Two levels are what the schema can need: a collection inside an item
of another (``complianceInformation/any(c: c/certificationControls/any(k: k/name eq 'x'))``);
no collection nests three deep. Graph itself documents no nested lambda on these sets.

Names: a property name matches exactly, else ignoring case. Type casts and qualified names are
not supported.

Open types. Undeclared (dynamic) properties of the *open complex types* (``controlScore``,
``averageComparativeScore`` ...) may be filtered on, as OData allows: ``c/count eq '4'``,
``a/deviceScore gt 10``. They are untyped JSON; a dynamic property may only be compared with a
string, number, Boolean or null literal (``eq ne gt ge lt le``, ``in``, and
``startswith/endswith/contains`` with a string), and it matches only when its JSON value has the
literal's type (so ``c/count eq 4`` does not match ``"count": "4"``). The entity types are open
too, but graphsec refuses unknown top-level properties on create (``schema.values.check_body``),
so an unknown top-level name is an error that names it rather than a filter that never matches.

Literals: null, true/false, integers (Int64 range), decimals (finite), 'strings' ('' escapes a
quote), Guids, DateTimeOffsets with an offset (at most 7 fractional digits), and enum members
as plain strings or ``Namespace.Type'member'``. Date, TimeOfDay, Duration and geography
literals, and functions other than those below, are refused naming them.
"""

from __future__ import annotations

import math

from odata_query import ast
from odata_query.exceptions import ArgumentCountException, ParsingException
from odata_query.grammar import ODataParser

from graphsec.errors import BadRequest
from graphsec.odata.filter_ast import (
    And,
    CompareOp,
    Const,
    FilterExpr,
    In,
    Kind,
    Lambda,
    Literal,
    Not,
    Or,
    Predicate,
    Quantifier,
    Value,
)
from graphsec.odata.filter_check import Scope, TypeRules, describe
from graphsec.odata.filter_tokens import EnumLiteral, full_name, syntax_error, tokenize
from graphsec.schema.types import Collection, ComplexType, EntityType
from graphsec.schema.values import INT64_MAX, INT64_MIN, parse_datetime

MAX_DEPTH = 32
MAX_NODES = 500
MAX_LAMBDA_DEPTH = 2
"""any/all inside any/all: at most this many levels (see the module docstring)."""

_COMPARE: dict[type[ast._Node], CompareOp] = {
    ast.Eq: "eq", ast.NotEq: "ne", ast.Gt: "gt", ast.GtE: "ge", ast.Lt: "lt", ast.LtE: "le",
}
_MATCH = ("startswith", "endswith", "contains")
_TOKENS = (ast._BinOpToken, ast._Comparator, ast._BoolOpToken, ast._UnaryOpToken,
           ast._CollectionOperator)


def parse_filter(text: str, entity: EntityType) -> FilterExpr:
    """Parse and type-check a ``$filter`` against ``entity``; BadRequest naming any problem.

    Results are remembered (by text and entity type) because dashboards send the same filters
    again and again, and parsing costs more than running the query."""
    key = (text, entity.name)
    expr = _PARSED.get(key)
    if expr is None:
        expr = _parse(text, entity)  # a BadRequest is not remembered: it is raised anew
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.pop(next(iter(_PARSED)))
        _PARSED[key] = expr
    return expr


_PARSED: dict[tuple[str, str], FilterExpr] = {}
_PARSED_MAX = 1024


def _parse(text: str, entity: EntityType) -> FilterExpr:
    tokens = tokenize(text)
    if not tokens:
        raise BadRequest("The $filter is empty.")
    try:
        tree = ODataParser().parse(iter(tokens))
    except ParsingException as exc:
        index = None if exc.eof or exc.token is None else exc.token.index
        raise syntax_error(text, index) from None
    except ArgumentCountException as exc:
        raise BadRequest(f"In $filter: {exc}") from None
    except BadRequest:
        raise
    except Exception as exc:  # the library's other failures (unknown function ...)
        name = getattr(exc, "function_name", None)
        if name is not None:
            raise BadRequest(f"The function '{name}' is not supported in $filter.") from None
        raise BadRequest(f"The $filter '{text[:200]}' could not be parsed.") from None
    if not isinstance(tree, ast._Node):
        raise syntax_error(text, None)
    _check_size(tree)
    return _Checker(entity).condition(tree, {})


def _children(node: ast._Node) -> list[ast._Node]:
    out: list[ast._Node] = []
    for value in vars(node).values():
        items = value if isinstance(value, list) else [value]
        out.extend(v for v in items if isinstance(v, ast._Node) and not isinstance(v, _TOKENS))
    return out


def _check_size(tree: ast._Node) -> None:
    """Iteratively: at most MAX_NODES nodes and MAX_DEPTH levels (a chain of one and/or, or
    the segments of one path, count as one level)."""
    stack = [(tree, 1)]
    nodes = 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise BadRequest(f"The $filter is too complex: more than {MAX_NODES} nodes.")
        if depth > MAX_DEPTH:
            raise BadRequest(f"The $filter nests more than {MAX_DEPTH} levels deep.")
        for child in _children(node):
            same = (isinstance(node, ast.BoolOp) and isinstance(child, ast.BoolOp)
                    and type(node.op) is type(child.op)) or (
                isinstance(node, ast.Attribute) and isinstance(child, ast.Attribute))
            stack.append((child, depth if same else depth + 1))


def _is_condition(node: ast._Node) -> bool:
    if isinstance(node, ast.Call):
        return full_name(node.func) in _MATCH
    if isinstance(node, ast.UnaryOp):
        return isinstance(node.op, ast.Not)
    return isinstance(node, ast.Compare | ast.BoolOp | ast.CollectionLambda)


class _Checker(TypeRules):
    def condition(self, node: ast._Node, scope: Scope) -> Predicate:
        if isinstance(node, ast.BoolOp):
            return self._chain(node, scope)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return Not(self.condition(node.operand, scope))
        if isinstance(node, ast.Compare):
            return self._compare(node, scope)
        if isinstance(node, ast.Call) and full_name(node.func) in _MATCH:
            return self._match(node, scope)
        if isinstance(node, ast.CollectionLambda):
            return self._lambda(node, scope)
        if isinstance(node, ast.Boolean):
            return Const(node.py_val)
        value = self.value(node, scope)
        if value.kind is Kind.BOOLEAN:
            return self.compare("eq", value, Literal(True, Kind.BOOLEAN))
        raise BadRequest(f"In $filter, {describe(value)} is not a condition: a $filter must be "
                         "true or false for each item (e.g. compare it with eq).")

    def _chain(self, node: ast.BoolOp, scope: Scope) -> Predicate:
        op = type(node.op)
        items: list[Predicate] = []
        stack: list[ast._Node] = [node]
        while stack:
            current = stack.pop()
            if isinstance(current, ast.BoolOp) and type(current.op) is op:
                stack.extend((current.right, current.left))
            else:
                items.append(self.condition(current, scope))
        return And(tuple(items)) if op is ast.And else Or(tuple(items))

    def _compare(self, node: ast.Compare, scope: Scope) -> Predicate:
        if isinstance(node.comparator, ast.In):
            return self._in(node, scope)
        op = _COMPARE[type(node.comparator)]
        for cond, other in ((node.left, node.right), (node.right, node.left)):
            if _is_condition(cond) and isinstance(other, ast.Boolean) and op in ("eq", "ne"):
                predicate = self.condition(cond, scope)
                return predicate if other.py_val == (op == "eq") else Not(predicate)
        return self.compare(op, self.value(node.left, scope), self.value(node.right, scope))

    def _in(self, node: ast.Compare, scope: Scope) -> Predicate:
        value = self.value(node.left, scope)
        if not isinstance(node.right, ast.List):  # pragma: no cover - the grammar ensures it
            raise BadRequest("In $filter, 'in' must be followed by a list: x in ('a', 'b').")
        items: list[Literal] = []
        for raw in node.right.val:
            item = self.value(raw, scope)
            if not isinstance(item, Literal):
                raise BadRequest(f"In $filter, the items of an 'in' list must be literals; "
                                 f"{describe(item)} is not.")
            checked = self.compare("eq", value, item)
            assert isinstance(checked.right, Literal)
            items.append(checked.right)
        return In(value, tuple(items))

    def _match(self, node: ast.Call, scope: Scope) -> Predicate:
        name = full_name(node.func)
        args = [self.value(a, scope) for a in node.args]
        return self.match(name, args)

    def _lambda(self, node: ast.CollectionLambda, scope: Scope) -> Predicate:
        quantifier: Quantifier = "any" if isinstance(node.operator, ast.Any) else "all"
        if len(scope) >= MAX_LAMBDA_DEPTH:  # the scope holds one variable per enclosing lambda
            raise BadRequest(f"The $filter nests {quantifier}() more than {MAX_LAMBDA_DEPTH} "
                             f"levels deep (the limit is {MAX_LAMBDA_DEPTH}: a lambda over a "
                             "collection inside an item of another); split the filter or "
                             "narrow it.")
        collection, edm = self.resolve(node.owner, scope)
        if not isinstance(edm, Collection):
            raise BadRequest(f"In $filter, {describe(collection)} is not a collection; "
                             f"{quantifier}() applies to collections.")
        item_kind = Kind.COMPLEX if isinstance(edm.item, ComplexType) else self.kind_of(edm.item)
        if node.lambda_ is None:
            return Lambda("any", collection, None, None, item_kind)
        var = node.lambda_.identifier
        if var.namespace or var.name in scope:
            raise BadRequest(f"In $filter, the lambda variable '{full_name(var)}' is already "
                             "in use or not a simple name; choose another.")
        inner = {**scope, var.name: edm.item}
        predicate = self.condition(node.lambda_.expression, inner)
        return Lambda(quantifier, collection, var.name, predicate, item_kind)

    def value(self, node: ast._Node, scope: Scope) -> Value:
        if isinstance(node, ast._Literal):
            return self._literal(node)
        if isinstance(node, ast.Identifier | ast.Attribute):
            return self.resolve(node, scope)[0]
        if isinstance(node, ast.BinOp):
            op = type(node.op).__name__.lower().replace("mult", "mul")
            return self.arith(op, self.value(node.left, scope), self.value(node.right, scope))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return self.negate(self.value(node.operand, scope))
        if isinstance(node, ast.Call):
            name = full_name(node.func)
            if name in _MATCH:
                raise BadRequest(f"In $filter, {name}() is a condition and cannot be used as a "
                                 "value; compare it only with true or false.")
            if any(isinstance(a, ast.NamedParam) for a in node.args):
                raise BadRequest(f"In $filter, named parameters (in {name}) are not supported.")
            return self.function(name, [self.value(a, scope) for a in node.args])
        if _is_condition(node):
            raise BadRequest("In $filter, a condition cannot be used as a value here.")
        raise BadRequest(f"In $filter, this kind of expression ({type(node).__name__}) is not "
                         "supported here.")

    def _literal(self, node: ast._Literal) -> Literal:
        if isinstance(node, ast.Null):
            return Literal(None, Kind.NULL)
        if isinstance(node, ast.Boolean):
            return Literal(node.py_val, Kind.BOOLEAN)
        if isinstance(node, ast.Integer):
            number = int(node.val)
            if not INT64_MIN <= number <= INT64_MAX:
                raise BadRequest(f"The number {node.val} in $filter is out of range.")
            return Literal(number, Kind.INT, node.val)
        if isinstance(node, ast.Float):
            real = float(node.val)
            if not math.isfinite(real):
                raise BadRequest(f"The number {node.val} in $filter is out of range.")
            return Literal(real, Kind.DOUBLE, node.val)
        if isinstance(node, EnumLiteral):
            return Literal(node.val, Kind.ENUM, f"{node.type_name}'{node.val}'", node.type_name)
        if isinstance(node, ast.String):
            return Literal(node.val, Kind.STRING)
        if isinstance(node, ast.GUID):
            return Literal(node.val.lower(), Kind.GUID, node.val)
        if isinstance(node, ast.DateTime):
            try:
                parsed = parse_datetime(node.val)
            except ValueError as exc:
                raise BadRequest(f"In $filter: {exc}.") from None
            return Literal(parsed.ticks, Kind.DATETIME, node.val)
        if isinstance(node, ast.List):
            raise BadRequest("In $filter, a list can only follow 'in': x in ('a', 'b').")
        kind = type(node).__name__
        shown = getattr(node, "val", "")
        hint = " Use a DateTimeOffset such as 2024-02-01T00:00:00Z." if kind == "Date" else ""
        raise BadRequest(f"{kind} literals such as {shown} are not supported in $filter.{hint}")


__all__ = ["FilterExpr", "parse_filter"]
