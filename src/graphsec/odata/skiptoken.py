"""Opaque, tamper-evident ``$skiptoken`` values for keyset paging (pure, no I/O).

A token carries the sort-key values of the last entity of a page and a fingerprint of the query
it belongs to, signed with HMAC-SHA256 under a secret every worker of a deployment shares. A
token that was altered, or that is replayed against another query or tenant, is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import orjson

from graphsec.errors import BadRequest

VERSION = 1


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def fingerprint(*parts: str) -> str:
    """A short digest of what identifies a query (tenant, entity set, filter, order)."""
    return _b64(hashlib.sha256("\x1f".join(parts).encode()).digest()[:12])


class SkipTokens:
    """Encodes and checks skiptokens under one secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:16]

    def encode(self, query_fingerprint: str, after: tuple[Any, ...]) -> str:
        payload = orjson.dumps({"v": VERSION, "q": query_fingerprint, "k": list(after)})
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def decode(self, token: str, query_fingerprint: str, keys: int) -> tuple[Any, ...]:
        """The sort-key values in ``token``; 400 if it is forged, damaged or for another query."""
        try:
            body, mac = token.split(".")
            payload = _unb64(body)
            valid = hmac.compare_digest(self._mac(payload), _unb64(mac))
        except ValueError:
            valid = False
        if not valid:
            raise BadRequest("The $skiptoken is not valid: it was not issued by this service or "
                             "was altered. Follow @odata.nextLink exactly as returned.")
        data = orjson.loads(payload)
        after = data.get("k")
        if (data.get("v") != VERSION or data.get("q") != query_fingerprint
                or not isinstance(after, list) or len(after) != keys):
            raise BadRequest("The $skiptoken does not belong to this query (its $filter, "
                             "$orderby or tenant differ) or has expired. Start again from the "
                             "first page.")
        return tuple(after)
