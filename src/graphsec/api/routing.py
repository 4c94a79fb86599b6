"""The URL table: ``/{version}/security/{entitySet}[/{id} | /$count | /$ref | ('{id}')]``.

Segments are matched case-insensitively, as Graph does (``/v1.0/Security/securescores`` works);
ids stay exactly as sent. Segments are split on the raw path before percent-decoding, so an id
may contain an encoded ``/``. Percent-encoded bytes are UTF-8 (``caf%C3%A9`` is ``café``, as is a
raw ``café``); bytes that are not UTF-8 are a 400, never a replacement character.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

from graphsec.errors import BadRequest, MethodNotAllowed, ResourceNotFoundForSegment
from graphsec.schema.types import EntitySet

VERSIONS = ("v1.0", "beta")
_VERSION_NAMES = {v: v for v in VERSIONS}
Kind = Literal["collection", "item", "count", "ref"]

_KEY_IN_PARENS = re.compile(r"(?P<name>[^()]+)\((?P<key>.*)\)")

METHODS: dict[Kind, tuple[str, ...]] = {
    "collection": ("GET", "POST", "PATCH"),
    "item": ("GET", "PATCH", "DELETE"),
    "count": ("GET",),
    "ref": ("POST",),
}


@dataclass(slots=True)
class Target:
    """What a URL addresses (not frozen: a frozen dataclass's ``__init__`` costs four times as
    much, and one is built for every request)."""

    version: str
    entity_set: EntitySet
    kind: Kind
    key: str | None = None


class Router:
    """Resolves request paths against the entity sets each version serves."""

    def __init__(self, entity_sets: tuple[EntitySet, ...]) -> None:
        self._sets = {
            version: {es.name.lower(): es for es in entity_sets if version in es.versions}
            for version in VERSIONS
        }

    @staticmethod
    def version_of(raw_path: str) -> str | None:
        """The API version a path starts with (canonical spelling), or None."""
        return _VERSION_NAMES.get(raw_path.lstrip("/").partition("/")[0].lower())

    def resolve(self, raw_path: str, method: str) -> Target:
        """The target of ``raw_path`` (still percent-encoded); 400/405 with Graph's messages."""
        stripped = raw_path.strip("/")
        segments = stripped.split("/")
        if "%" in stripped:
            try:
                segments = [unquote(s, errors="strict") for s in segments]
            except UnicodeDecodeError:
                raise BadRequest("The path holds percent-encoded bytes that are not UTF-8; "
                                 "encode ids as UTF-8 (RFC 3986).") from None
        version = segments[0].lower()
        rest = segments[1:]
        if not rest or not rest[0]:
            raise BadRequest(f"Resource not found: /{segments[0]} addresses no resource; "
                             "try /security/secureScores.")
        if rest[0].lower() != "security":
            raise ResourceNotFoundForSegment(rest[0])
        if len(rest) < 2 or not rest[1]:
            raise BadRequest("The security singleton itself is not served; address one of its "
                             f"entity sets, e.g. /{version}/security/secureScores.")
        name, key = rest[1], None
        match = _KEY_IN_PARENS.fullmatch(name) if "(" in name else None
        if match:
            name, key = match["name"], _parse_key(match["key"])
        entity_set = self._sets[version].get(name.lower())
        if entity_set is None:
            raise ResourceNotFoundForSegment(name)
        tail = rest[2:]
        kind: Kind = "collection"
        if key is not None:
            kind = "item"
            if tail:
                raise ResourceNotFoundForSegment(tail[0])
        elif tail:
            head = tail[0]
            if len(tail) > 1:
                raise ResourceNotFoundForSegment(tail[1])
            if head.lower() == "$count":
                kind = "count"
            elif head.lower() == "$ref":
                kind = "ref"
            elif not head:
                raise BadRequest("The entity id in the URL is empty.")
            else:
                kind, key = "item", head
        allowed = METHODS[kind]
        if method not in allowed:
            raise MethodNotAllowed(method, allowed)
        return Target(version, entity_set, kind, key)


def _parse_key(text: str) -> str:
    """OData key syntax inside parentheses: ``'id'`` (quotes doubled inside) or ``id='...'``."""
    value = text.strip()
    if "=" in value and not value.startswith("'"):
        name, _, value = value.partition("=")
        if name.strip().lower() != "id":
            raise BadRequest(f"The key property '{name.strip()}' is not the key; use id.")
        value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("''", "'")
    raise BadRequest(f"The key {text!r} is not valid; quote it: ('{text}').")
