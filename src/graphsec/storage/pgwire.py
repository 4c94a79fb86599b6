"""GETs by id on PostgreSQL over a connection of their own, spoken to in the wire protocol.

A GET by id is the one request whose answer the database must give (a write by any worker or
tool is seen at once) and whose work there is tiny: the response is a version check against
``pgcache.py`` (the body travels only when the row changed). Through asyncpg, each check cost
the worker ~140 µs of CPU per statement plus ~4 µs per read, more than the rest of the request
(``bench/RESULTS.md``): coroutine layers, a drainer task woken by the statement's future, array
parameters checked element by element against ``collections.abc``, a ``Record`` per row. Here:

- Reads queue up during one turn of the event loop and go out together, at the start of the
  next, as one Bind/Execute/Sync of a statement prepared once per connection. Statements are
  pipelined: a batch is sent without waiting for the one before it (at most ``MAX_IN_FLIGHT``;
  past that, reads wait and the next answer sends them).
- The keys travel as three JSON arrays (tenants, ids, versions held), encoded by orjson in C;
  rows come back in binary: the key's position, the row version, the body when it changed.
- The answer is parsed in the protocol's ``data_received``, which resolves each reader's future
  directly: no task is woken in between.

The connection is opened by asyncpg (TLS, authentication, every connection option stay
asyncpg's), then its transport is handed to :class:`_WireProtocol`; asyncpg's ``Connection``
object is kept only to be closed. :meth:`WireReads.open` says whether that worked; where it
does not (an asyncpg without the transport attribute), the store reads through asyncpg
(``pgbatch.py``).

Semantics are those of ``pgbatch.PointReads``: one statement is one snapshot; a read whose
connection is lost is sent again, once, on a fresh one (a restarted server loses its
connections), and fails with a 503 if that fails too; a statement the database refuses fails
the reads of that batch only.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from collections import deque

import asyncpg
import orjson

from graphsec.storage.pgbatch import (
    MAX_BATCH,
    Read,
    fail_reads,
    key_probe_sql,
    retry_or_fail,
    versioned_body,
)
from graphsec.storage.pgcache import BodyCache
from graphsec.storage.pgpool import ConnectionPool, connection_lost, unavailable

MAX_IN_FLIGHT = 8

_HEAD = struct.Struct("!cI")  # message type, length (itself included)
_ROW = struct.Struct("!hiiiIi")  # DataRow: columns; len, position; len, xmin; len of body
_ROW_SIZE = _ROW.size
_SYNC = b"S\0\0\0\4"
_EXECUTE_SYNC = b"E\0\0\0\x09\0\0\0\0\0" + _SYNC
_BIND_TAIL = b"\0\1\0\1"  # one result format code for every column: binary


def wire_sql(table: str) -> str:
    """The versioned lookup of many keys, sent as JSON arrays of tenants (``$1``), ids (``$2``)
    and the row version held for each (``$3``, null for none). Each row answers the key at
    position ``n`` with the row's version, and its body only when that is not the one held;
    each key is one primary-key probe (``pgbatch.key_probe_sql``)."""
    return (f'SELECT k.n::int4, t.xmin, CASE WHEN t.xmin = k.held::xid THEN NULL ELSE t.body END '
            f'FROM ROWS FROM (json_array_elements_text($1::json), '
            f'json_array_elements_text($2::json), json_array_elements_text($3::json)) '
            f'WITH ORDINALITY AS k(tenant_id, id, held, n) {key_probe_sql(table)}')


def _message(kind: bytes, payload: bytes) -> bytes:
    return kind + (len(payload) + 4).to_bytes(4, "big") + payload


def _text(value: bytes) -> bytes:
    return len(value).to_bytes(4, "big") + value


class _Batch:
    __slots__ = ("entity_set", "error", "held", "parses", "reads", "rows")

    def __init__(self, entity_set: str, reads: list[Read],
                 held: list[tuple[int, bytes] | None], parses: bool) -> None:
        self.entity_set = entity_set
        self.reads = reads
        self.held = held
        self.parses = parses
        """The batch carries the statement's Parse (the first use on this connection)."""
        self.rows: list[tuple[int, bytes | None] | None] = [None] * len(reads)
        self.error: BaseException | None = None


class _WireProtocol(asyncio.Protocol):
    """Reads the backend's messages for :class:`WireReads` (which writes to the transport)."""

    def __init__(self, owner: WireReads) -> None:
        self.owner = owner
        self.buffer = bytearray()
        self.parsed = False  # ParseComplete seen in the current batch

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        size = len(buf)
        pos = 0
        owner = self.owner
        in_flight = owner.in_flight
        while size - pos >= 5:
            kind, length = _HEAD.unpack_from(buf, pos)
            end = pos + 1 + length
            if end > size:
                break
            if not in_flight:  # before a FATAL error and the close: nothing to answer
                pass
            elif kind == b"D":
                _, _, n, _, version, blen = _ROW.unpack_from(buf, pos + 5)
                start = pos + 5 + _ROW_SIZE
                body = None if blen < 0 else bytes(buf[start:start + blen])
                rows = in_flight[0].rows
                if 0 < n <= len(rows):
                    rows[n - 1] = (version, body)
            elif kind == b"Z":
                owner.finish(self.parsed)
                self.parsed = False
            elif kind == b"E":
                in_flight[0].error = _error(bytes(buf[pos + 5:end]))
            elif kind == b"1":
                self.parsed = True
            # BindComplete, CommandComplete and what may come at any time (notices, parameter
            # status, notifications) need nothing
            pos = end
        del buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.lost(self, exc)


def _error(payload: bytes) -> asyncpg.PostgresError:
    """asyncpg's exception for an ErrorResponse (its class follows the SQLSTATE)."""
    fields: dict[str, str] = {}
    for part in payload.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
    return asyncpg.PostgresError.new(fields)


class WireReads:
    """Point reads (``get``) over one dedicated, pipelined connection; see the module."""

    def __init__(self, pool: ConnectionPool, tables: dict[str, str],
                 cache: BodyCache | None) -> None:
        self.pool = pool
        self.cache = cache
        self._loop = asyncio.get_running_loop()
        self._sql = {name: wire_sql(table) for name, table in tables.items()}
        self._names = {name: f"graphsec_get_{i}".encode() for i, name in enumerate(tables)}
        self._queue: deque[Read] = deque()
        self.in_flight: deque[_Batch] = deque()
        self._prepared: set[str] = set()  # statements this connection has (or is parsing)
        self._conn: asyncpg.Connection | None = None
        self._transport: asyncio.WriteTransport | None = None
        self._protocol: _WireProtocol | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._flush_soon = False
        self._closed = False
        self.statements = 0
        """Statements sent so far (the tests read it)."""

    async def open(self) -> bool:
        """Connect; False where asyncpg's connection does not expose its transport."""
        conn = await self.pool.open_dedicated()
        if not self._attach(conn):
            conn.terminate()
            return False
        return True

    def _attach(self, conn: asyncpg.Connection) -> bool:
        transport = getattr(conn, "_transport", None)
        if transport is None or not hasattr(transport, "set_protocol") or transport.is_closing():
            return False
        protocol = _WireProtocol(self)
        transport.set_protocol(protocol)
        self._conn, self._transport, self._protocol = conn, transport, protocol
        self._prepared.clear()
        return True

    async def get(self, entity_set: str, tenant: str, entity_id: str) -> bytes | None:
        if self._closed:
            raise RuntimeError("the PostgreSQL store is closed")
        future: asyncio.Future[bytes | None] = self._loop.create_future()
        self._queue.append((entity_set, tenant, entity_id, future, 0))
        if not self._flush_soon:
            self._flush_soon = True
            self._loop.call_soon(self._flush)
        return await future

    # -- sending --------------------------------------------------------------------------------

    def _flush(self) -> None:
        self._flush_soon = False
        if self._transport is None:
            if self._connecting is None and self._queue and not self._closed:
                self._connecting = self._loop.create_task(self._reconnect())
            return
        if self._transport.is_closing():  # lost() follows, and sends the queue on a new one
            return
        while self._queue and len(self.in_flight) < MAX_IN_FLIGHT:
            self._send(self._next_batch())

    def _next_batch(self) -> list[Read]:
        queue = self._queue
        entity_set = queue[0][0]
        batch: list[Read] = []
        rest: list[Read] = []
        while queue and len(batch) < MAX_BATCH:
            read = queue.popleft()
            if read[3].done():  # cancelled while it waited
                continue
            (batch if read[0] == entity_set else rest).append(read)
        queue.extendleft(reversed(rest))
        return batch

    def _send(self, reads: list[Read]) -> None:
        if not reads:
            return
        assert self._transport is not None
        entity_set = reads[0][0]
        cache = self.cache
        now = time.monotonic()
        held: list[tuple[int, bytes] | None] = [None] * len(reads)
        if cache is not None:  # what is held now, kept here: the cache may drop it meanwhile
            held = [cache.held((entity_set, r[1], r[2]), now) for r in reads]
        try:
            tenants = orjson.dumps([r[1] for r in reads])
            ids = orjson.dumps([r[2] for r in reads])
        except TypeError:  # a str orjson refuses (a lone surrogate) names no stored entity
            self._send_without_unencodable(reads)
            return
        versions = orjson.dumps([None if h is None else h[0] for h in held])
        name = self._names[entity_set]
        parses = entity_set not in self._prepared
        out = []
        if parses:
            self._prepared.add(entity_set)
            out.append(_message(b"P", name + b"\0" + self._sql[entity_set].encode() + b"\0\0\0"))
        out.append(_message(b"B", b"\0" + name + b"\0\0\0\0\3" + _text(tenants) + _text(ids)
                            + _text(versions) + _BIND_TAIL))
        out.append(_EXECUTE_SYNC)
        self._transport.write(b"".join(out))
        self.in_flight.append(_Batch(entity_set, reads, held, parses))
        self.statements += 1

    def _send_without_unencodable(self, reads: list[Read]) -> None:
        sendable = []
        for read in reads:
            try:
                orjson.dumps([read[1], read[2]])
            except TypeError:
                if not read[3].done():
                    read[3].set_result(None)
            else:
                sendable.append(read)
        self._send(sendable)

    # -- receiving ------------------------------------------------------------------------------

    def finish(self, parsed: bool) -> None:
        """ReadyForQuery: the oldest batch in flight is answered."""
        batch = self.in_flight.popleft()
        if batch.parses and not parsed:
            self._prepared.discard(batch.entity_set)  # its Parse failed: send it again next time
        if batch.error is not None:
            for read in batch.reads:
                if not read[3].done():
                    read[3].set_exception(batch.error)
        else:
            self._answer(batch)
        if self._queue and not self._flush_soon:
            self._flush()

    def _answer(self, batch: _Batch) -> None:
        cache, entity_set = self.cache, batch.entity_set
        for read, row, held in zip(batch.reads, batch.rows, batch.held, strict=True):
            if not read[3].done():
                read[3].set_result(None if row is None else versioned_body(
                    cache, (entity_set, read[1], read[2]), held, row[0], row[1]))

    # -- losing and regaining the connection ----------------------------------------------------

    def lost(self, protocol: _WireProtocol, exc: Exception | None) -> None:
        """The connection went (a restart, a failover, a network fault, or :meth:`close`)."""
        if protocol is not self._protocol:
            return
        conn = self._conn
        self._conn = self._transport = self._protocol = None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.terminate()
        batches = list(self.in_flight)
        self.in_flight.clear()
        reads = [r for b in batches for r in b.reads if not r[3].done()]
        if self._closed:
            fail_reads(reads, RuntimeError("the PostgreSQL store is closed"))
            return
        self.pool.discard_idle()  # a restarted server has closed them all; empties the cache
        retry_or_fail(self._queue, reads,
                      exc or ConnectionResetError("the PostgreSQL connection closed"))
        if self._queue and not self._flush_soon:
            self._flush()

    async def _reconnect(self) -> None:
        try:
            conn = await self.pool.open_dedicated()
        except Exception as exc:  # nothing to send on: the waiting reads get the error
            queued = list(self._queue)
            self._queue.clear()
            fail_reads(queued, unavailable(exc) if connection_lost(exc) else exc)
            return
        finally:  # (cancelled by close(), which fails what waits)
            self._connecting = None
        if self._closed or not self._attach(conn):
            conn.terminate()
            fail_reads(list(self._queue), RuntimeError("the PostgreSQL store is closed"))
            self._queue.clear()
            return
        self._flush()

    async def close(self) -> None:
        """Close the connection; reads still waiting fail."""
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(BaseException):
                await self._connecting
        transport, conn = self._transport, self._conn
        self._conn = self._transport = self._protocol = None
        if transport is not None:
            with contextlib.suppress(Exception):
                transport.write(b"X\0\0\0\4")  # Terminate
        if conn is not None:
            conn.terminate()
        batches = list(self.in_flight)
        self.in_flight.clear()
        waiting = [r for b in batches for r in b.reads] + list(self._queue)
        self._queue.clear()
        fail_reads(waiting, RuntimeError("the PostgreSQL store is closed"))
