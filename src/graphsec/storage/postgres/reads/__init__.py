"""Reads by id on PostgreSQL: one Protocol, two readers, one statement.

A GET by id is the one request whose answer the database must give (a write by any worker or
tool is seen at once) and whose work there is tiny: a version check against the document cache
(``postgres/cache.py``; the body travels only when the row changed). Its cost is the round trip
and the driver's work around it, so every reader coalesces concurrent reads into one statement
per round trip. Which reader a store uses is ``Settings.pg_reads`` (``GRAPHSEC_PG_READS``):

- ``prepared`` (``prepared.py``, the default): asyncpg's public API only, one connection of its
  own, a statement prepared once per connection, the keys as one ``jsonb`` parameter.
- ``batch`` (``batch.py``): through the store's pool with ``Connection.fetch``; also what the
  store falls back to when another reader cannot open.

Every reader keeps the same promises: one statement is one snapshot (each read in it sees each
write committed before the statement began); a read whose connection is lost is sent again,
once, on a fresh connection (a restarted server loses its connections), and gets a 503 if that
fails too; a statement the database refuses fails the reads of its own batch only; a key the
statement cannot carry (an id with a lone surrogate) finds nothing and fails no other read.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from sqlalchemy import (
    Integer,
    Text,
    bindparam,
    case,
    cast,
    column,
    func,
    literal_column,
    select,
    table,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.types import UserDefinedType

from graphsec.storage.postgres.cache import BodyCache, Key
from graphsec.storage.postgres.pool import unavailable

MAX_BATCH = 256
"""Keys one statement carries at most."""


@dataclass(slots=True)
class ReadRequest:
    """One read by id waiting for its answer."""

    entity_set: str
    """The entity set's name (the reader knows each set's table)."""
    tenant: str
    entity_id: str
    future: asyncio.Future[bytes | None]
    """Resolved with the stored document, or None when there is no such entity."""
    attempts: int = 0
    """How many times the read was sent already (a lost connection sends it once more)."""


class PointReads(Protocol):
    """Reads by (entity set, tenant, id), each answered with the stored document or None."""

    statements: int
    """Statements run so far (the tests read it)."""
    own_connection: bool
    """It reads over a connection of its own: one more per worker than the pool's size."""

    async def open(self) -> bool:
        """Get ready; False when this reader cannot work here (the store uses ``batch``)."""

    async def get(self, entity_set: str, tenant: str, entity_id: str) -> bytes | None:
        """The stored document of ``entity_id`` in ``entity_set`` of ``tenant``, or None."""

    async def close(self) -> None:
        """Fail the reads still waiting and release what the reader holds."""


# -- the statement -----------------------------------------------------------------------------

class _Xid(UserDefinedType[int]):
    """PostgreSQL's ``xid``, the type of ``xmin`` (the row version, ``postgres/cache.py``)."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "xid"


def probe_sql(table_name: str) -> str:
    """The lookup of many keys in one table, with one parameter: a ``jsonb`` array with one
    ``[tenant, id, version held or null]`` per key (:func:`encode_keys`). Each row answers the
    key at position ``n`` (from 1) with the row's version and its body, the body NULL when the
    version is the one held. A key without a row has no row.

    Each key is one primary-key probe, in a LATERAL subquery that ``OFFSET 0`` keeps from being
    flattened: as a join, 64 keys on a small table were planned as a hash join over a sequential
    scan of the whole table (``tests/storage/test_plans.py`` checks the plan)."""
    s = table(table_name, column("tenant_id", Text), column("id", Text), column("body"),
              column("xmin", _Xid())).alias("s")
    keys = (func.jsonb_array_elements(bindparam("keys", type_=JSONB))
            .table_valued("key", with_ordinality="n").render_derived().alias("k"))

    def element(i: int) -> Any:
        return keys.c.key.op("->>")(literal_column(str(i)))

    row = (select(s.c.xmin, s.c.body)
           .where(s.c.tenant_id == element(0).collate("C"), s.c.id == element(1).collate("C"))
           .offset(literal_column("0")).lateral("t"))
    held = cast(element(2), _Xid())
    stmt = (select(cast(keys.c.n, Integer).label("n"), row.c.xmin,
                   case((row.c.xmin == held, None), else_=row.c.body).label("body"))
            .select_from(keys.join(row, true())))
    compiled = stmt.compile(dialect=asyncpg_dialect.dialect())  # type: ignore[no-untyped-call]
    assert tuple(compiled.positiontup or ()) == ("keys",), compiled.positiontup
    return compiled.string


def encode_keys(reads: list[ReadRequest], versions: list[int | None]) -> str | None:
    """The parameter of :func:`probe_sql` for ``reads``, with the version held for each; None
    when a key cannot be encoded (a str with a lone surrogate: no stored entity has it)."""
    try:
        return orjson.dumps([[r.tenant, r.entity_id, v]
                             for r, v in zip(reads, versions, strict=True)]).decode()
    except TypeError:
        return None


def without_unencodable(reads: list[ReadRequest]) -> list[ReadRequest]:
    """``reads`` less those whose key JSON cannot carry, which are answered None (not found)."""
    sendable = []
    for read in reads:
        try:
            orjson.dumps([read.tenant, read.entity_id])
        except TypeError:
            if not read.future.done():
                read.future.set_result(None)
        else:
            sendable.append(read)
    return sendable


def held_versions(cache: BodyCache | None, reads: list[ReadRequest],
                  now: float) -> list[tuple[int, bytes] | None]:
    """What ``cache`` holds for each read now, kept by the caller: the cache may drop it while
    the statement runs."""
    if cache is None:
        return [None] * len(reads)
    return [cache.held((r.entity_set, r.tenant, r.entity_id), now) for r in reads]


# -- answers and failures ----------------------------------------------------------------------

def versioned_body(cache: BodyCache | None, key: Key, held: tuple[int, bytes] | None,
                   version: int, body: bytes | None) -> bytes | None:
    """What a read returns for a row found at ``version`` (``body`` sent only when that is not
    the version held): the held document, or the new one, kept in ``cache``; None for a row
    whose body is NULL (not written by graphsec)."""
    if held is not None and version == held[0]:
        if cache is not None:
            cache.hits += 1
        return held[1]
    if body is not None and cache is not None:
        cache.misses += 1
        cache.put(key, version, body)
    return body


def answer(cache: BodyCache | None, reads: list[ReadRequest],
           held: list[tuple[int, bytes] | None],
           rows: Iterable[tuple[int, int, bytes | None]]) -> None:
    """Resolve each read of a batch from the statement's ``rows`` (position from 1, version,
    body): its document, or None when no row answers it."""
    found: list[tuple[int, bytes | None] | None] = [None] * len(reads)
    for n, version, body in rows:
        found[n - 1] = (version, body)
    for read, row, h in zip(reads, found, held, strict=True):
        if not read.future.done():
            read.future.set_result(None if row is None else versioned_body(
                cache, (read.entity_set, read.tenant, read.entity_id), h, row[0], row[1]))


def fail_reads(reads: Iterable[ReadRequest], exc: BaseException) -> None:
    """Every read still waiting gets ``exc``."""
    for read in reads:
        if not read.future.done():
            read.future.set_exception(exc)


def retry_or_fail(queue: deque[ReadRequest], reads: Iterable[ReadRequest],
                  exc: BaseException) -> None:
    """The connection was lost under ``reads``: those sent once go back to the front of
    ``queue``, for a fresh connection; those already retried fail with a 503."""
    waiting = [r for r in reads if not r.future.done()]
    failed = [r for r in waiting if r.attempts > 0]
    again = [r for r in waiting if r.attempts == 0]
    for read in again:
        read.attempts += 1
    queue.extendleft(reversed(again))
    if failed:
        fail_reads(failed, unavailable(exc))


def next_batch(queue: deque[ReadRequest]) -> list[ReadRequest]:
    """Up to ``MAX_BATCH`` waiting reads of the entity set of the first, taken off ``queue``
    (the reads of other sets keep their places); reads cancelled meanwhile are dropped."""
    while queue and queue[0].future.done():
        queue.popleft()
    if not queue:
        return []
    entity_set = queue[0].entity_set
    batch: list[ReadRequest] = []
    rest: list[ReadRequest] = []
    while queue and len(batch) < MAX_BATCH:
        read = queue.popleft()
        if read.future.done():
            continue
        (batch if read.entity_set == entity_set else rest).append(read)
    queue.extendleft(reversed(rest))
    return batch


__all__ = [
    "MAX_BATCH",
    "PointReads",
    "ReadRequest",
    "answer",
    "encode_keys",
    "fail_reads",
    "held_versions",
    "next_batch",
    "probe_sql",
    "retry_or_fail",
    "versioned_body",
    "without_unencodable",
]
