"""graphsec's typed ``$filter`` tree: what :func:`graphsec.odata.filter.parse_filter` returns.

Pure data (frozen dataclasses, tuples), already checked against the entity type, so a backend
compiles it without looking anything up and without being able to fail on a client's input.

Two kinds of node:

* **values** (:data:`Value`) have a :class:`Kind`: :class:`Literal`, :class:`Prop` (a property
  path from the entity or from a lambda variable), :class:`Arith`, :class:`Negate`,
  :class:`Func` (string functions and date parts);
* **conditions** (:data:`Predicate`) are true or false, never null: :class:`Compare`,
  :class:`In`, :class:`Match` (startswith/endswith/contains), :class:`And`, :class:`Or`,
  :class:`Not`, :class:`Lambda` (any/all), :class:`Const`.

Semantics every backend implements (and ``tests/odata/reference.py`` spells out in Python):

* strings compare case-insensitively (both sides lowered; ASCII case folding, as SQLite does);
* ``eq``/``ne`` are null-aware (``null eq null`` is true, a null property *is* ``ne 'x'``);
  ``gt ge lt le`` and the string-match functions are false when an operand is null;
  functions and arithmetic on null give null; division by zero gives null;
* conditions are two-valued, so ``not`` is plain negation and ``all`` is "no item fails";
* a :attr:`Kind.UNTYPED` property (a dynamic property of an open complex type) matches a
  literal only when its JSON value has the literal's JSON type (string, number, boolean).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal as TypingLiteral


class Kind(StrEnum):
    """The type of a value, as far as comparing and computing with it goes."""

    STRING = "string"
    INT = "int"
    DOUBLE = "double"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    """DateTimeOffset; a literal's value is 100 ns ticks since 1970 (UTC)."""
    GUID = "guid"
    ENUM = "enum"
    COMPLEX = "complex"
    COLLECTION = "collection"
    UNTYPED = "untyped"
    """A dynamic property of an open complex type: whatever JSON it holds."""
    NULL = "null"

    @property
    def numeric(self) -> bool:
        return self in (Kind.INT, Kind.DOUBLE)


CompareOp = TypingLiteral["eq", "ne", "gt", "ge", "lt", "le"]
ArithOp = TypingLiteral["add", "sub", "mul", "div", "mod"]
MatchFn = TypingLiteral["startswith", "endswith", "contains"]
FuncName = TypingLiteral[
    "tolower", "toupper", "trim", "length", "concat", "indexof", "substring",
    "year", "month", "day", "hour", "minute", "second",
]
Quantifier = TypingLiteral["any", "all"]


@dataclass(frozen=True)
class Literal:
    """A constant. ``value``: None (null), bool, int (also DateTimeOffset ticks), float or str
    (strings, Guids in lower case, enum members in their declared spelling)."""

    value: bool | int | float | str | None
    kind: Kind
    text: str = ""
    """How the client wrote it (for messages); empty when it is obvious from ``value``."""
    type_name: str = ""
    """For an ENUM literal: the enum type (``microsoft.graph.accountStatus``)."""


@dataclass(frozen=True)
class Prop:
    """A property path. ``root`` None starts at the entity (``path`` non-empty, its first name a
    declared property); otherwise ``root`` names the lambda variable it starts at (``path``
    empty means the item itself). Names are the declared spellings; past the first undeclared
    name of an open type the path is dynamic and ``kind`` is UNTYPED."""

    root: str | None
    path: tuple[str, ...]
    kind: Kind
    type_name: str
    """The Edm type for messages: ``Edm.Double``, ``microsoft.graph.controlScore`` ..."""

    @property
    def text(self) -> str:
        return "/".join(((self.root,) if self.root else ()) + self.path)


@dataclass(frozen=True)
class Arith:
    op: ArithOp
    left: Value
    right: Value
    kind: Kind
    """INT when both operands are INT (``div`` then truncates toward zero), else DOUBLE."""


@dataclass(frozen=True)
class Negate:
    operand: Value
    kind: Kind


@dataclass(frozen=True)
class Func:
    """A value function; ``substring`` positions are zero-based, negative ones count as 0."""

    name: FuncName
    args: tuple[Value, ...]
    kind: Kind


Value = Literal | Prop | Arith | Negate | Func


@dataclass(frozen=True)
class Compare:
    op: CompareOp
    left: Value
    right: Value


@dataclass(frozen=True)
class In:
    """``value in (items)``: true when ``value eq item`` for some item."""

    value: Value
    items: tuple[Literal, ...]


@dataclass(frozen=True)
class Match:
    """``startswith(subject, pattern)`` etc., case-insensitive; ``%`` and ``_`` are literal."""

    fn: MatchFn
    subject: Value
    pattern: Value


@dataclass(frozen=True)
class And:
    items: tuple[Predicate, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Predicate, ...]


@dataclass(frozen=True)
class Not:
    operand: Predicate


@dataclass(frozen=True)
class Lambda:
    """``collection/any(var: predicate)`` or ``all``; ``any()`` (no variable, no predicate)
    means "not empty". ``item_kind`` is COMPLEX for collections of complex values."""

    quantifier: Quantifier
    collection: Prop
    variable: str | None
    predicate: Predicate | None
    item_kind: Kind


@dataclass(frozen=True)
class Const:
    value: bool


Predicate = Compare | In | Match | And | Or | Not | Lambda | Const
FilterExpr = Predicate
"""A whole ``$filter``."""


def remember_hash(cls: type) -> None:
    """Make the frozen dataclass ``cls`` compute its hash once per object. A parsed filter is
    remembered and sent again and again (``parse_filter``), and it keys the compiled statements
    (``storage/sql/listing.py``): hashing 20 ids anew for each statement of each request cost
    15 % of an ``id in (…)`` list in-process. The hash stays out of pickles (a string's hash
    differs between processes)."""
    computed: Callable[[object], int] = cls.__hash__  # type: ignore[assignment]

    def __hash__(self: object) -> int:
        known: int | None = self.__dict__.get("_hash")
        if known is None:
            known = computed(self)
            object.__setattr__(self, "_hash", known)
        return known

    def __getstate__(self: object) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k != "_hash"}

    type.__setattr__(cls, "__hash__", __hash__)
    type.__setattr__(cls, "__getstate__", __getstate__)


for _node in (Literal, Prop, Arith, Negate, Func, Compare, In, Match, And, Or, Not, Lambda, Const):
    remember_hash(_node)
