"""OData system query options: parsed, checked against the entity type, bounded.

Names are case-insensitive; on ``/beta`` the ``$`` prefix is optional (Graph's rule), on
``/v1.0`` a name without ``$`` is a custom parameter and is ignored. A repeated option, a value
of the wrong form, an unknown ``$`` option, or one this request cannot take is a 400 naming it.
Percent-encoded bytes are UTF-8 (a 400 if they are not); numbers are ASCII digits only (``²`` or
``٣`` in ``$top`` is a 400, not a number).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl

from graphsec.errors import BadRequest
from graphsec.odata.query import OrderKey
from graphsec.schema.types import EntityType

MAX_TOP = 999
MAX_SKIP = 2**31 - 1
MAX_FILTER_LENGTH = 4096
KNOWN = ("filter", "select", "orderby", "top", "skip", "count", "skiptoken", "search",
         "expand", "format")

Context = Literal["collection", "entity", "count"]
ALLOWED: dict[Context, frozenset[str]] = {
    "collection": frozenset({"filter", "select", "orderby", "top", "skip", "count", "skiptoken",
                             "format"}),
    "entity": frozenset({"select", "format"}),
    "count": frozenset({"filter"}),
}


@dataclass
class QueryOptions:
    """The options of one request, canonical and typed."""

    raw: dict[str, str] = field(default_factory=dict)
    """Canonical name (``top``) → value as sent; rebuilt into nextLinks."""
    top: int | None = None
    skip: int = 0
    count: bool = False
    select: tuple[str, ...] | None = None
    orderby: tuple[OrderKey, ...] | None = None
    filter: Any = None
    skiptoken: str | None = None

    @property
    def may_scan(self) -> bool:
        """Whether a list with these options may read more than one index range of ``$top``
        rows: a ``$filter``, an ``$orderby``, a ``$skip`` or a ``$count``."""
        return (self.filter is not None or self.orderby is not None or self.skip > 0
                or self.count)


def split_query(query_string: str, version: str) -> dict[str, str]:
    """Canonical option name → value. Custom (non-``$``) parameters are dropped except on beta,
    where ``top=2`` means ``$top=2``.

    Results are remembered (by query string and version, for query strings up to
    :data:`_SPLIT_LONGEST` characters), as :func:`~graphsec.odata.filter.parse_filter` remembers
    filters: clients send the same query strings again and again, and percent-decoding a
    filter of 20 ids cost more than running its SQL (60 µs of 270 µs a request, in-process).
    The caller gets a copy of its own."""
    if not query_string:
        return {}
    key = (query_string, version)
    known = _SPLIT.get(key)
    if known is None:
        known = _split(query_string, version)  # a BadRequest is not remembered: it is raised anew
        if len(query_string) <= _SPLIT_LONGEST:
            if len(_SPLIT) >= _SPLIT_MAX:
                _SPLIT.pop(next(iter(_SPLIT)))
            _SPLIT[key] = known
    return dict(known)


_SPLIT: dict[tuple[str, str], dict[str, str]] = {}
_SPLIT_MAX = 512
_SPLIT_LONGEST = 4096
"""At most 512 query strings of up to 4,096 characters are remembered: 4 MiB at worst."""


def _split(query_string: str, version: str) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        pairs = parse_qsl(query_string, keep_blank_values=True, strict_parsing=False,
                          max_num_fields=64, errors="strict")
    except UnicodeDecodeError:
        raise BadRequest("The query string holds percent-encoded bytes that are not UTF-8; "
                         "encode values as UTF-8 (RFC 3986).") from None
    except ValueError:
        raise BadRequest("The query string has too many parameters (at most 64).") from None
    for name, value in pairs:
        lowered = name.strip().lower()
        if lowered.startswith("$"):
            canonical = lowered[1:]
            if canonical not in KNOWN:
                raise BadRequest(f"The query parameter '{name}' is not supported.")
        elif version == "beta" and lowered in KNOWN:
            canonical = lowered
        else:
            continue
        if canonical in out:
            raise BadRequest(f"The query option '${canonical}' was specified more than once; "
                             "each may appear only once.")
        out[canonical] = value
    return out


def parse_options(
    raw: dict[str, str], entity: EntityType, context: Context, entity_set_name: str
) -> QueryOptions:
    """Check every option against ``context`` and the entity type."""
    opts = QueryOptions(raw=raw)
    if not raw:
        return opts
    for name in raw:
        if name in ("search", "expand"):
            raise BadRequest(f"The query option '${name}' is not supported on the "
                             f"'{entity_set_name}' entity set.")
        if name not in ALLOWED[context]:
            where = {"collection": "a collection", "entity": "a single entity",
                     "count": "a $count request"}[context]
            raise BadRequest(f"The query option '${name}' cannot be used on {where}.")
    if "format" in raw and raw["format"].strip().lower() not in ("json", "application/json"):
        raise BadRequest(f"The $format '{raw['format']}' is not supported; only json is.")
    if "top" in raw:
        opts.top = _integer("top", raw["top"], 1, MAX_TOP)
    if "skip" in raw:
        opts.skip = _integer("skip", raw["skip"], 0, MAX_SKIP)
    if "count" in raw:
        value = raw["count"].strip().lower()
        if value not in ("true", "false"):
            raise BadRequest(f"The $count value '{raw['count']}' is not valid; use true or false.")
        opts.count = value == "true"
    if "select" in raw:
        opts.select = _select(raw["select"], entity)
    if "orderby" in raw:
        opts.orderby = _orderby(raw["orderby"], entity)
    if "skiptoken" in raw:
        if not raw["skiptoken"]:
            raise BadRequest("The $skiptoken is empty; follow @odata.nextLink exactly as returned.")
        opts.skiptoken = raw["skiptoken"]
    if "filter" in raw:
        text = raw["filter"]
        if len(text) > MAX_FILTER_LENGTH:
            raise BadRequest(f"The $filter is {len(text)} characters long; at most "
                             f"{MAX_FILTER_LENGTH} are accepted.")
        if not text.strip():
            raise BadRequest("The $filter is empty.")
        from graphsec.odata.filter import parse_filter

        opts.filter = parse_filter(text, entity)
    return opts


def _integer(name: str, text: str, low: int, high: int) -> int:
    value = text.strip()
    # isdigit() alone admits ² and ① (int() then fails) and ٣ (int() reads it as 3)
    if not (value.isascii() and value.isdigit()) or len(value) > 12:
        raise BadRequest(f"The ${name} value '{text}' is not valid; it must be a whole number "
                         f"from {low} to {high}.")
    number = int(value)
    if not low <= number <= high:
        raise BadRequest(f"The ${name} value {number} is out of range; it must be from {low} "
                         f"to {high}.")
    return number


def _select(text: str, entity: EntityType) -> tuple[str, ...]:
    names: list[str] = []
    for part in text.split(","):
        item = part.strip()
        if item == "*":
            return tuple(p.name for p in entity.properties)
        if not item:
            raise BadRequest(f"The $select '{text}' has an empty item.")
        if "/" in item or "(" in item:
            raise BadRequest(f"The $select item '{item}' is not supported: select top-level "
                             "properties by name.")
        prop = entity.property(item) or entity.property_ci(item)
        if prop is None:
            raise BadRequest(f"Could not find a property named '{item}' on type '{entity}' "
                             "(in $select).")
        if prop.name not in names:
            names.append(prop.name)
    return tuple(names)


def _orderby(text: str, entity: EntityType) -> tuple[OrderKey, ...]:
    keys: list[OrderKey] = []
    parts = [p.strip() for p in text.split(",")]
    if len(parts) > 8:
        raise BadRequest("The $orderby has more than 8 keys.")
    for part in parts:
        words = part.split()
        if not words or len(words) > 2:
            raise BadRequest(f"The $orderby item '{part}' is not valid; use 'property [asc|desc]'.")
        descending = False
        if len(words) == 2:
            direction = words[1].lower()
            if direction not in ("asc", "desc"):
                raise BadRequest(f"The $orderby direction '{words[1]}' is not valid; use asc "
                                 "or desc.")
            descending = direction == "desc"
        path = tuple(words[0].split("/"))
        head = entity.property(path[0]) or entity.property_ci(path[0])
        if head is None:
            raise BadRequest(f"Could not find a property named '{path[0]}' on type '{entity}' "
                             "(in $orderby).")
        path = (head.name, *path[1:])
        if any(k.path == path for k in keys):
            raise BadRequest(f"The $orderby names '{'/'.join(path)}' more than once.")
        keys.append(OrderKey(path, descending))
    return tuple(keys)
