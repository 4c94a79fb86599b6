"""Checking JSON bodies against the declared types, and the Edm value formats.

A body is checked whole and every problem is reported with the path of the property it concerns
(``averageComparativeScores[0].averageScore``), so that a client fixes them all at once.
Values come out normalized: Int32 as int, Double as float, DateTimeOffset as UTC text with the
fractional digits it was sent with, Guid in lower case, enum members in their declared spelling.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Collection as AbcCollection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Literal

from graphsec.schema.types import (
    Collection,
    ComplexType,
    EdmType,
    EntityType,
    EnumType,
    Primitive,
    Property,
)

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
TICKS_PER_SECOND = 10_000_000

_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a body: the property path and what is wrong with it."""

    target: str
    message: str


class ValidationError(Exception):
    """A body or value that does not fit the declared types; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        first = problems[0].message
        others = [p.target for p in problems[1:]]
        more = f" Also invalid: {', '.join(repr(t) for t in others)}." if others else ""
        super().__init__(first + more)


@dataclass(frozen=True)
class DateTimeOffset:
    """A parsed DateTimeOffset: UTC text keeping the sent precision, and 100 ns ticks since 1970."""

    text: str
    ticks: int


@lru_cache(maxsize=8192)
def parse_datetime(value: str) -> DateTimeOffset:
    """Parse an ISO 8601 DateTimeOffset with an offset (``Z`` or ``±hh:mm``), at most 7 fraction digits.

    Raises ValueError with a message a person can act on.
    """
    m = _DATETIME.fullmatch(value)
    if m is None:
        raise ValueError(
            f"'{value}' is not a valid Edm.DateTimeOffset; use ISO 8601 with an offset, "
            "e.g. 2024-02-01T00:00:00Z (at most 7 fractional digits)"
        )
    year, month, day, hour, minute = (int(m.group(i)) for i in range(1, 6))
    second = int(m.group(6) or 0)
    fraction = m.group(7) or ""
    if m.group(8):
        offset = timedelta(0)
    else:
        sign = -1 if m.group(9) == "-" else 1
        oh, om = int(m.group(10)), int(m.group(11))
        if oh > 14 or om > 59:
            raise ValueError(f"'{value}' has an invalid UTC offset")
        offset = sign * timedelta(hours=oh, minutes=om)
    try:
        local = datetime(year, month, day, hour, minute, second, tzinfo=timezone(offset))
        utc = local.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"'{value}' is not a valid Edm.DateTimeOffset: {exc}") from None
    # formatted by hand: strftime's %Y does not pad years before 1000 on every platform
    text = (f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T"
            f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}")
    if fraction:
        text += "." + fraction
    seconds = calendar.timegm(utc.timetuple())
    ticks = seconds * TICKS_PER_SECOND + int(fraction.ljust(7, "0") or 0)
    return DateTimeOffset(text + "Z", ticks)


def now_datetime() -> str:
    """The current time as graphsec stores it: UTC, microsecond precision."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


Mode = Literal["create", "patch"]


def _type_is(value: Any, edm: EdmType) -> str:
    if isinstance(value, bool):
        shown = "true" if value else "false"
    elif isinstance(value, str):
        shown = f"'{value}'" if len(value) <= 60 else f"'{value[:57]}...'"
    elif isinstance(value, dict):
        shown = "an object"
    elif isinstance(value, list):
        shown = "an array"
    else:
        shown = str(value)
    return f"cannot convert {shown} to the expected type '{edm}'"


class _Checker:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def fail(self, target: str, message: str) -> None:
        if len(self.problems) < 50:
            self.problems.append(Problem(target, message))

    def value(self, value: Any, prop: Property, target: str) -> Any:
        if value is None:
            if isinstance(prop.type, Collection):
                self.fail(target, f"Property '{target}' is a collection and cannot be null; send [] "
                                  "for an empty one.")
            elif not prop.nullable:
                self.fail(target, f"Property '{target}' cannot be null.")
            return None
        return self.typed(value, prop.type, target)

    def typed(self, value: Any, edm: EdmType, target: str) -> Any:
        if isinstance(edm, Primitive):
            return self.primitive(value, edm, target)
        if isinstance(edm, EnumType):
            if isinstance(value, str):
                for member in edm.members:
                    if member.lower() == value.lower():
                        return member
            self.fail(target, f"Invalid value for property '{target}': {_type_is(value, edm)}; "
                              f"expected one of: {', '.join(edm.members)}.")
            return None
        if isinstance(edm, Collection):
            if not isinstance(value, list):
                self.fail(target, f"Invalid value for property '{target}': {_type_is(value, edm)}; "
                                  "a collection must be a JSON array.")
                return None
            out: list[Any] = []
            for i, item in enumerate(value):
                path = f"{target}[{i}]"
                if item is None and isinstance(edm.item, Primitive | EnumType):
                    out.append(None)
                elif item is None:
                    self.fail(path, f"Item '{path}' cannot be null.")
                else:
                    out.append(self.typed(item, edm.item, path))
            return out
        return self.complex(value, edm, target)

    def complex(self, value: Any, edm: ComplexType, target: str) -> Any:
        if not isinstance(value, dict):
            self.fail(target, f"Invalid value for property '{target}': {_type_is(value, edm)}; "
                              "expected a JSON object.")
            return None
        out: dict[str, Any] = {}
        for key, item in value.items():
            path = f"{target}.{key}"
            if "@" in key:
                self.annotation(key, item, edm, path)
                continue
            prop = edm.property(key)
            if prop is not None:
                out[key] = self.value(item, prop, path)
            elif edm.open:
                out[key] = item
            else:
                self.fail(path, f"'{key}' is not a property of '{edm}' (at '{path}').")
        return out

    def primitive(self, value: Any, edm: Primitive, target: str) -> Any:
        name = edm.name
        if name == "Edm.String":
            if isinstance(value, str):
                return value
        elif name in ("Edm.Int32", "Edm.Int64"):
            lo, hi = (INT32_MIN, INT32_MAX) if name == "Edm.Int32" else (INT64_MIN, INT64_MAX)
            number = value
            if isinstance(value, float) and value.is_integer():
                number = int(value)
            if isinstance(number, int) and not isinstance(number, bool):
                if lo <= number <= hi:
                    return number
                self.fail(target, f"Invalid value for property '{target}': {number} is out of "
                                  f"range for '{name}' ({lo} to {hi}).")
                return None
        elif name == "Edm.Double":
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
        elif name == "Edm.Boolean":
            if isinstance(value, bool):
                return value
        elif name == "Edm.DateTimeOffset":
            if isinstance(value, str):
                try:
                    return parse_datetime(value).text
                except ValueError as exc:
                    self.fail(target, f"Invalid value for property '{target}': {exc}.")
                    return None
        elif name == "Edm.Guid" and isinstance(value, str) and _GUID.fullmatch(value):
            return value.lower()
        self.fail(target, f"Invalid value for property '{target}': {_type_is(value, edm)}.")
        return None

    def annotation(self, key: str, value: Any, edm: ComplexType | EntityType, path: str) -> None:
        if key != "@odata.type":
            return  # other instance and property annotations carry no data and are ignored
        expected = str(edm)
        if not isinstance(value, str) or value.lstrip("#").lower() != expected.lower():
            self.fail(path, f"'@odata.type' at '{path}' is {value!r}; this value must be "
                            f"'#{expected}' (or left out).")


def check_body(entity: EntityType, body: Any, mode: Mode) -> dict[str, Any]:
    """Check a create or PATCH body against ``entity``; return the normalized properties sent.

    Unknown top-level properties are refused (graphsec's decision 1), except the PATCH-only
    dynamic properties the entity declares in ``patch_extras``. Instance annotations other than
    ``@odata.type`` are ignored. Raises :class:`ValidationError` naming every problem.
    """
    checker = _Checker()
    if not isinstance(body, dict):
        raise ValidationError([Problem("", "The request body must be a JSON object.")])
    out: dict[str, Any] = {}
    unknown: list[str] = []
    extras = {p.name: p for p in entity.patch_extras} if mode == "patch" else {}
    for key, value in body.items():
        if "@" in key:
            checker.annotation(key, value, entity, key)
            continue
        prop = entity.property(key) or extras.get(key)
        if prop is None:
            unknown.append(key)
            continue
        out[key] = checker.value(value, prop, key)
    for key in unknown:
        hint = ""
        near = entity.property_ci(key)
        if near is not None:
            hint = f" Did you mean '{near.name}'?"
        checker.fail(key, f"Property '{key}' does not exist on type '{entity}'.{hint}")
    if checker.problems:
        raise ValidationError(checker.problems)
    return out


def complete(entity: EntityType | ComplexType, doc: dict[str, Any],
             only: AbcCollection[str] | None = None) -> dict[str, Any]:
    """Fill every declared property left out with null (an empty array for collections).

    Graph answers with every declared property, so stored documents are kept complete.
    ``only``: complete just these properties (the rest is known to be complete already).
    """
    out = dict(doc)
    for prop in entity.properties:
        if only is not None and prop.name not in only:
            continue
        current = out.get(prop.name)
        if isinstance(prop.type, Collection):
            if current is None:
                out[prop.name] = []
            elif isinstance(prop.type.item, ComplexType):
                item_type = prop.type.item
                out[prop.name] = [complete(item_type, v) if isinstance(v, dict) else v
                                  for v in current]
        elif isinstance(prop.type, ComplexType):
            out[prop.name] = complete(prop.type, current) if isinstance(current, dict) else None
        elif prop.name not in out:
            out[prop.name] = None
    return out


def merge(entity: EntityType | ComplexType, stored: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """PATCH semantics: sent properties replace stored ones; a sent complex value is merged into
    the stored one property by property (OData 4.01 §11.4.3); collections are replaced whole."""
    out = dict(stored)
    for key, value in patch.items():
        prop = entity.property(key)
        old = out.get(key)
        if (prop is not None and isinstance(prop.type, ComplexType)
                and isinstance(value, dict) and isinstance(old, dict)):
            out[key] = merge(prop.type, old, value)
        else:
            out[key] = value
    return out
