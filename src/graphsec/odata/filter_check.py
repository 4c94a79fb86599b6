"""The typing rules of ``$filter``: property paths, comparisons, functions and arithmetic.

Used by :mod:`graphsec.odata.filter`; see there for what is allowed and why.
"""

from __future__ import annotations

from odata_query import ast

from graphsec.errors import BadRequest
from graphsec.odata.filter_ast import (
    Arith,
    Compare,
    CompareOp,
    Func,
    Kind,
    Literal,
    Match,
    Negate,
    Predicate,
    Prop,
    Value,
)
from graphsec.odata.filter_tokens import full_name
from graphsec.schema.types import (
    Collection,
    ComplexType,
    EdmType,
    EntityType,
    EnumType,
    Primitive,
    Property,
)

Scope = dict[str, "Primitive | EnumType | ComplexType"]
"""The lambda variables in scope and the type of the items they range over."""

_KINDS = {
    "Edm.String": Kind.STRING, "Edm.Int32": Kind.INT, "Edm.Int64": Kind.INT,
    "Edm.Double": Kind.DOUBLE, "Edm.Boolean": Kind.BOOLEAN,
    "Edm.DateTimeOffset": Kind.DATETIME, "Edm.Guid": Kind.GUID,
}
_EDM = {Kind.STRING: "Edm.String", Kind.INT: "Edm.Int32", Kind.DOUBLE: "Edm.Double",
        Kind.BOOLEAN: "Edm.Boolean", Kind.DATETIME: "Edm.DateTimeOffset", Kind.GUID: "Edm.Guid"}
_S, _I, _D = Kind.STRING, Kind.INT, Kind.DATETIME
_FUNCTIONS: dict[str, tuple[tuple[tuple[Kind, ...], ...], Kind]] = {
    "tolower": (((_S,),), _S), "toupper": (((_S,),), _S), "trim": (((_S,),), _S),
    "length": (((_S,),), _I), "concat": (((_S, _S),), _S), "indexof": (((_S, _S),), _I),
    "substring": (((_S, _I), (_S, _I, _I)), _S),
    **dict.fromkeys(("year", "month", "day", "hour", "minute", "second"), (((_D,),), _I)),
}
_DYNAMIC_LITERALS = (Kind.STRING, Kind.INT, Kind.DOUBLE, Kind.BOOLEAN, Kind.GUID)


def describe(value: Value) -> str:
    """How a message names a value: ``'currentScore' (Edm.Double)``, ``the string 'abc'``."""
    if isinstance(value, Prop):
        return f"'{value.text}' ({value.type_name})"
    if isinstance(value, Literal):
        if value.kind is Kind.NULL:
            return "null"
        if value.kind is Kind.STRING:
            shown = value.value if len(str(value.value)) <= 60 else f"{str(value.value)[:57]}..."
            return f"the string '{shown}'"
        if value.kind.numeric:
            return f"the number {value.text or value.value}"
        if value.kind is Kind.BOOLEAN:
            return f"the Boolean {str(value.value).lower()}"
        if value.kind is Kind.DATETIME:
            return f"the DateTimeOffset {value.text}"
        if value.kind is Kind.GUID:
            return f"the Guid {value.value}"
        return f"the enum member {value.text}"
    if isinstance(value, Func):
        return f"{value.name}(...) ({_EDM.get(value.kind, value.kind)})"
    return f"an arithmetic expression ({_EDM.get(value.kind, value.kind)})"


def _find(props: tuple[Property, ...], name: str) -> Property | None:
    for prop in props:
        if prop.name == name:
            return prop
    lowered = name.lower()
    for prop in props:
        if prop.name.lower() == lowered:
            return prop
    return None


class TypeRules:
    def __init__(self, entity: EntityType) -> None:
        self.entity = entity
        self.enums: dict[str, EnumType] = {}

    def kind_of(self, edm: EdmType) -> Kind:
        if isinstance(edm, Primitive):
            return _KINDS[edm.name]
        if isinstance(edm, EnumType):
            self.enums[str(edm)] = edm
            return Kind.ENUM
        return Kind.COMPLEX if isinstance(edm, ComplexType) else Kind.COLLECTION

    def resolve(self, node: ast._Node, scope: Scope) -> tuple[Prop, EdmType | None]:
        """A property path (Identifier/Attribute chain) and its type (None when dynamic)."""
        segments: list[str] = []
        while isinstance(node, ast.Attribute):
            segments.append(node.attr)
            node = node.owner
        if not isinstance(node, ast.Identifier):
            raise BadRequest("In $filter, only properties and lambda variables have properties.")
        if node.namespace:
            raise BadRequest(f"Qualified names such as '{full_name(node)}' are not supported "
                             "in $filter.")
        segments.append(node.name)
        segments.reverse()
        first, rest = segments[0], segments[1:]
        root: str | None = None
        current: EdmType
        names: list[str] = []
        if first in scope:
            root, current = first, scope[first]
        else:
            prop = self.entity.property(first) or self.entity.property_ci(first)
            if prop is None:
                hint = f" Lambda variables in scope: {', '.join(scope)}." if scope else ""
                raise BadRequest(f"Could not find a property named '{first}' on type "
                                 f"'{self.entity}'.{hint}")
            current, names = prop.type, [prop.name]
        for i, segment in enumerate(rest):
            here = "/".join(([root] if root else []) + names)
            if isinstance(current, ComplexType):
                found = _find(current.properties, segment)
                if found is not None:
                    names.append(found.name)
                    current = found.type
                    continue
                if current.open:
                    names.extend(rest[i:])
                    name = f"dynamic property of open type {current}"
                    return Prop(root, tuple(names), Kind.UNTYPED, name), None
                raise BadRequest(f"Could not find a property named '{segment}' on type "
                                 f"'{current}'.")
            if isinstance(current, Collection):
                raise BadRequest(f"In $filter, '{here}' is a collection ({current}); filter on "
                                 f"its items with {here}/any(x: x/{segment} ...).")
            raise BadRequest(f"In $filter, '{here}' is {current} and has no property "
                             f"'{segment}'.")
        return Prop(root, tuple(names), self.kind_of(current), str(current)), current

    def compare(self, op: CompareOp, left: Value, right: Value) -> Compare:
        """Check that ``left op right`` makes sense; enum strings become enum literals."""
        for side in (left, right):
            if side.kind is Kind.COLLECTION:
                raise BadRequest(f"In $filter, {describe(side)} is a collection and cannot be "
                                 "compared; use any() or all().")
        fail = BadRequest(f"In $filter, cannot compare {describe(left)} with {describe(right)}.")
        kinds = {left.kind, right.kind}
        equality = op in ("eq", "ne")
        if Kind.NULL in kinds:
            if not equality:
                raise BadRequest(f"In $filter, '{op}' cannot compare with null; only eq and ne "
                                 "can.")
            return Compare(op, left, right)
        if Kind.COMPLEX in kinds:
            raise BadRequest(f"In $filter, cannot compare {describe(left)} with "
                             f"{describe(right)}: a complex value compares only with null.")
        if Kind.UNTYPED in kinds:
            dynamic, other = (left, right) if left.kind is Kind.UNTYPED else (right, left)
            if not isinstance(other, Literal) or other.kind not in _DYNAMIC_LITERALS:
                raise BadRequest(f"In $filter, {describe(dynamic)} can only be compared with a "
                                 f"string, number, Boolean or null literal, not "
                                 f"{describe(other)}.")
            if other.kind is Kind.BOOLEAN and not equality:
                raise fail
            return Compare(op, left, right)
        if Kind.ENUM in kinds:
            return Compare(op, *self._enum(op, left, right, fail))
        if left.kind.numeric and right.kind.numeric:
            return Compare(op, left, right)
        if len(kinds) == 1 and left.kind in (Kind.STRING, Kind.DATETIME, Kind.GUID):
            return Compare(op, left, right)
        if kinds == {Kind.BOOLEAN}:
            if not equality:
                raise BadRequest(f"In $filter, Boolean values cannot be compared with '{op}'; "
                                 "use eq or ne.")
            return Compare(op, left, right)
        raise fail

    def _enum(self, op: str, left: Value, right: Value,
              fail: BadRequest) -> tuple[Value, Value]:
        if op not in ("eq", "ne"):
            raise BadRequest(f"In $filter, enum values cannot be compared with '{op}'; use eq, "
                             "ne or in.")
        prop, other = (left, right) if isinstance(left, Prop) else (right, left)
        if not isinstance(prop, Prop) or prop.kind is not Kind.ENUM:
            raise fail
        enum = self.enums[prop.type_name]
        if isinstance(other, Prop) and other.type_name == prop.type_name:
            return left, right
        if not isinstance(other, Literal) or not isinstance(other.value, str):
            raise fail
        qualified = other.type_name.split(".")[-1].lower()
        if other.kind is not Kind.STRING and not (
                other.kind is Kind.ENUM and qualified == enum.name.lower()):
            raise fail
        for member in enum.members:
            if member.lower() == other.value.lower():
                literal = Literal(member, Kind.ENUM, f"'{member}'", str(enum))
                return (prop, literal) if prop is left else (literal, prop)
        raise BadRequest(f"In $filter, '{other.value}' is not a member of {enum}; expected one "
                         f"of: {', '.join(enum.members)}.")

    def match(self, name: str, args: list[Value]) -> Predicate:
        subject, pattern = args
        if pattern.kind is not Kind.STRING and pattern.kind is not Kind.NULL:
            raise BadRequest(f"The function '{name}' needs Edm.String arguments; "
                             f"{describe(pattern)} is not a string.")
        if subject.kind is Kind.UNTYPED:
            if not isinstance(pattern, Literal) or pattern.kind is not Kind.STRING:
                raise BadRequest(f"In $filter, {describe(subject)} can only be matched against "
                                 "a string literal.")
        elif subject.kind not in (Kind.STRING, Kind.NULL):
            raise BadRequest(f"The function '{name}' needs Edm.String arguments; "
                             f"{describe(subject)} is not a string.")
        return Match(name, subject, pattern)  # type: ignore[arg-type]

    def function(self, name: str, args: list[Value]) -> Func:
        spec = _FUNCTIONS.get(name)
        if spec is None:
            raise BadRequest(f"The function '{name}' is not supported in $filter; supported: "
                             f"startswith, endswith, contains, {', '.join(_FUNCTIONS)}.")
        signatures, result = spec
        signature = next((s for s in signatures if len(s) == len(args)), None)
        if signature is None:
            raise BadRequest(f"The function '{name}' takes {len(signatures[0])} argument(s) in "
                             f"$filter, not {len(args)}.")
        for arg, want in zip(args, signature, strict=True):
            if arg.kind is not want and arg.kind is not Kind.NULL:
                raise BadRequest(f"The function '{name}' needs {_EDM[want]} arguments; "
                                 f"{describe(arg)} is not.")
        return Func(name, tuple(args), result)  # type: ignore[arg-type]

    def arith(self, op: str, left: Value, right: Value) -> Arith:
        for side in (left, right):
            if not side.kind.numeric:
                raise BadRequest(f"In $filter, '{op}' needs numbers; {describe(side)} is not a "
                                 "number.")
        kind = Kind.INT if left.kind is right.kind is Kind.INT else Kind.DOUBLE
        return Arith(op, left, right, kind)  # type: ignore[arg-type]

    def negate(self, operand: Value) -> Value:
        if not operand.kind.numeric:
            raise BadRequest(f"In $filter, '-' needs a number; {describe(operand)} is not a "
                             "number.")
        if isinstance(operand, Literal) and isinstance(operand.value, int | float):
            return Literal(-operand.value, operand.kind, f"-{operand.text or operand.value}")
        return Negate(operand, operand.kind)
