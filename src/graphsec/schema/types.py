"""The Graph contract's type system as plain data.

Every entity set graphsec serves is described by these classes; validation, storage columns,
query compilation and rendering are all driven from the description, never written per entity;
what an entity set truly does on its own (a rule on create or update) is named by its
declaration too. This module imports nothing of graphsec's (the limits a rule is given are
only named, for type checkers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from graphsec.schema.limits import Limits

PrimitiveName = Literal[
    "Edm.String",
    "Edm.Int32",
    "Edm.Int64",
    "Edm.Double",
    "Edm.Boolean",
    "Edm.DateTimeOffset",
    "Edm.Guid",
]


@dataclass(frozen=True)
class Primitive:
    """An Edm primitive type such as ``Edm.Double``."""

    name: PrimitiveName

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class EnumType:
    """An OData enumeration; JSON carries the member name as a string."""

    name: str
    members: tuple[str, ...]

    def __str__(self) -> str:
        return f"microsoft.graph.{self.name}"


@dataclass(frozen=True)
class ComplexType:
    """A structured value without identity. Open types keep properties they do not declare."""

    name: str
    properties: tuple[Property, ...]
    open: bool = False

    def __str__(self) -> str:
        return f"microsoft.graph.{self.name}"

    def property(self, name: str) -> Property | None:
        """The declared property called ``name`` (exact spelling), or None."""
        for prop in self.properties:
            if prop.name == name:
                return prop
        return None


@dataclass(frozen=True)
class Collection:
    """``Collection(T)``: a JSON array whose items are of ``item``; never null, possibly empty."""

    item: Primitive | EnumType | ComplexType

    def __str__(self) -> str:
        return f"Collection({self.item})"


EdmType = Primitive | EnumType | ComplexType | Collection


@dataclass(frozen=True)
class Property:
    """A declared property. ``updatable`` False means a PATCH naming it is refused."""

    name: str
    type: EdmType
    nullable: bool = True
    updatable: bool = True

    @property
    def is_scalar(self) -> bool:
        """True for primitive and enum properties: the ones stored in typed, indexed columns."""
        return isinstance(self.type, Primitive | EnumType)


@dataclass(frozen=True)
class EntityType:
    """An entity type deriving from ``graph.entity`` (key ``id``: a non-null Edm.String).

    ``patch_extras`` names dynamic properties that a PATCH of this open entity may carry beside
    the declared ones (the control-profile state fields); any other unknown top-level property
    is refused so that typos are caught (where Graph would store it as a dynamic property).
    """

    name: str
    properties: tuple[Property, ...]
    open: bool = True
    patch_extras: tuple[Property, ...] = ()

    def __str__(self) -> str:
        return f"microsoft.graph.{self.name}"

    def property(self, name: str) -> Property | None:
        """The declared property called ``name`` (exact spelling), or None."""
        return self._by_name.get(name)

    def property_ci(self, name: str) -> Property | None:
        """The declared property whose name matches ``name`` ignoring case, or None."""
        return self._by_lower.get(name.lower())

    @cached_property
    def _by_name(self) -> dict[str, Property]:
        return {p.name: p for p in self.properties}

    @cached_property
    def _by_lower(self) -> dict[str, Property]:
        return {p.name.lower(): p for p in self.properties}


SortKey = tuple[str, bool]
"""A default sort key: (property name, descending)."""

Derive = Callable[[dict[str, Any]], tuple[dict[str, Any], ...]]
"""Sets what an update derives on the new document (the stored one with the client's changes
merged in, complete), in place, and returns the entries it pushed out of the document's bounded
history, oldest first, for the store to append to the history table. What it sets comes
complete: the update does not walk it again."""


class UpdateRule(Protocol):
    """An entity set's own check of a validated PATCH body (which it may consume), given the
    caller's display identity and the limits; returns what the update derives from it, if
    anything. Refuses the body by raising ``graphsec.schema.rules.RuleViolation``."""

    def __call__(self, patch: dict[str, Any], caller: str, limits: Limits) -> Derive | None: ...


class CreateRule(Protocol):
    """An entity set's own check of a validated POST body beyond its schema; refuses the body
    by raising ``graphsec.schema.rules.RuleViolation``."""

    def __call__(self, doc: dict[str, Any], limits: Limits) -> None: ...


@dataclass(frozen=True)
class ItemRows:
    """A collection of complex values whose items users filter on with ``any``/``all``
    (``controlScores/any(c: c/score gt 30)``): its items are also kept as rows of a table of
    their own, one typed column per declared scalar property of the item type, so that such a
    lambda reads an index instead of every item of every document (``storage/sql/items.py``).
    ``indexes``: the item properties of each index on those rows, after the tenant."""

    collection: str
    indexes: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class EntitySet:
    """A collection under the ``security`` singleton, e.g. ``secureScores``.

    ``patch_returns_entity``: whether a PATCH without a ``Prefer`` header answers 200 with the
    entity (the secureScore seed page) or 204 (Graph's documented rule elsewhere).
    ``collection_patch``: whether ``PATCH /security/<set>`` with an ``id`` in the body is accepted
    (the secureScore seed page's form).
    ``create_rule``/``update_rule``: the set's own behaviour beyond its schema, if any
    (``graphsec.schema.rules``).
    """

    name: str
    entity_type: EntityType
    table: str
    versions: frozenset[str] = frozenset({"v1.0", "beta"})
    default_order: tuple[SortKey, ...] = (("id", False),)
    default_page_size: int = 100
    patch_returns_entity: bool = False
    collection_patch: bool = False
    created_stamps: tuple[str, ...] = ()
    """DateTimeOffset properties set to now on create when the body leaves them out."""
    modified_stamps: tuple[str, ...] = ()
    """DateTimeOffset properties set to now by every PATCH."""
    create_rule: CreateRule | None = None
    update_rule: UpdateRule | None = None
    indexed: tuple[str, ...] = ()
    """Scalar properties users filter on, each with an index of (tenant, value), strings by
    their lower case (``$filter`` compares strings ignoring case), so that a comparison, an
    ``in``, a ``startswith`` on it reads an index range and ``$count`` counts in the index
    (``storage/sql/tables.py``; migration 0007 made those of this release)."""
    item_rows: tuple[ItemRows, ...] = ()
    """Collections whose items are kept as rows too (:class:`ItemRows`; migration 0008)."""

    @property
    def type_name(self) -> str:
        """The qualified entity type name, as in ``#microsoft.graph.secureScore``."""
        return str(self.entity_type)


STRING = Primitive("Edm.String")
INT32 = Primitive("Edm.Int32")
INT64 = Primitive("Edm.Int64")
DOUBLE = Primitive("Edm.Double")
BOOLEAN = Primitive("Edm.Boolean")
DATETIME = Primitive("Edm.DateTimeOffset")
GUID = Primitive("Edm.Guid")
