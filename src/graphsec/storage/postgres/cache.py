"""Documents read from PostgreSQL, kept by row version, so that a read can leave their bytes out.

A list page of 100 secureScores is ~470 KB of JSON. Moving it out of PostgreSQL (reading each
compressed ``body`` from the TOAST table, decompressing it, sending it over the socket, and
receiving it here) cost more CPU than everything else graphsec does for the request
(bench/RESULTS.md). So a page is read in two steps: the database answers which entities the
page holds, in which order, and each one's row version; the bodies of versions this process has
already seen come from here, and only the others are fetched (by id *and* version, so a row
rewritten in between is noticed and the page is read again the ordinary way). A GET by id sends
the version it holds and gets the body only when the row has changed.

The row version is PostgreSQL's ``xmin``: the id of the transaction that wrote this version of
the row. Every INSERT and UPDATE writes a new row version with its own transaction id, so a
stored document never changes under one (tenant, id, xmin). Transaction ids are 32 bits and
wrap around after 2^32 transactions; an entry is therefore trusted for ``ttl`` seconds only
(10 minutes: reaching the same id again in that time would take over seven million
transactions a second).

The database stays the only source of truth: what a response holds, and in which order, is
decided by a statement run for that request; this cache only saves copying bytes whose version
that statement named. Each worker process has its own, bounded by bytes, least recently used
dropped first.
"""

from __future__ import annotations

import time
from collections import OrderedDict

ENTRY_OVERHEAD = 200
"""Bytes counted per entry besides the document: the key, the tuple, the dict slot."""

Key = tuple[str, str, str]
"""(entity set, tenant, id)"""


class BodyCache:
    def __init__(self, max_bytes: int, ttl: float = 600.0) -> None:
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.size = 0
        """Bytes held, counted as in ``max_bytes``."""
        self._entries: OrderedDict[Key, tuple[int, bytes, float]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def held(self, key: Key, now: float) -> tuple[int, bytes] | None:
        """The version and document held for ``key``, if fresh at ``now``, or None."""
        entry = self._entries.get(key)
        if entry is None or now - entry[2] >= self.ttl:
            return None
        return entry[0], entry[1]

    def get(self, key: Key, version: int, now: float) -> bytes | None:
        """The document of ``key`` at ``version``, if held and fresh at ``now``
        (``time.monotonic()``, read once per request by the caller)."""
        entry = self._entries.get(key)
        if entry is None or entry[0] != version or now - entry[2] >= self.ttl:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: Key, version: int, body: bytes) -> None:
        """Hold ``body`` as the document of ``key`` at ``version``, replacing any other."""
        cost = len(body) + ENTRY_OVERHEAD
        if cost > self.max_bytes:
            self.discard(key)
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.size -= len(old[1]) + ENTRY_OVERHEAD
        self._entries[key] = (version, body, time.monotonic())
        self.size += cost
        while self.size > self.max_bytes:
            _, (_, dropped, _) = self._entries.popitem(last=False)
            self.size -= len(dropped) + ENTRY_OVERHEAD

    def discard(self, key: Key) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self.size -= len(old[1]) + ENTRY_OVERHEAD

    def clear(self) -> None:
        self._entries.clear()
        self.size = 0
