"""GETs by id on PostgreSQL over a connection of their own, spoken to in the wire protocol.

Opt-in (``GRAPHSEC_PG_READS=wire``). Through asyncpg's ``Connection.fetch``, each version
check cost the worker ~140 µs of CPU per statement plus ~4 µs per read, more than the rest of the
request (``bench/RESULTS.md``): coroutine layers, a drainer task woken by the statement's future,
array parameters checked element by element against ``collections.abc``, a ``Record`` per row.
The ``prepared`` reader avoids most of that on asyncpg's public API; this one goes further:

- Reads queue up during one turn of the event loop and go out together, at the start of the
  next, as one Bind/Execute/Sync of a statement prepared once per connection. Statements are
  pipelined: a batch is sent without waiting for the one before it (at most ``MAX_IN_FLIGHT``;
  past that, reads wait and the next answer sends them).
- The keys travel as one JSON parameter encoded by orjson in C (the statement every reader
  runs, ``reads.probe_sql``); rows come back in binary: the key's position, the row version,
  the body when it changed.
- The answer is parsed in the protocol's ``data_received``, which resolves each reader's future
  directly: no task is woken in between.

The connection is opened by asyncpg (TLS, authentication, every connection option stay
asyncpg's), then its transport is handed to :class:`_WireProtocol`; asyncpg's ``Connection``
object is kept only to be closed. :meth:`WireReads.open` says whether that worked; where it
does not (an asyncpg without the transport attribute), the store reads through its pool
(``batch.py``). After ``set_protocol``, asyncpg's ``Connection`` no longer tells the truth
(``is_closed()``): nothing here asks it anything.

The promises are those of every reader (``reads/__init__.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from collections import deque

import asyncpg

from graphsec.storage.postgres.cache import BodyCache
from graphsec.storage.postgres.pool import ConnectionPool, connection_lost, unavailable
from graphsec.storage.postgres.reads import (
    ReadRequest,
    answer,
    encode_keys,
    fail_reads,
    held_versions,
    next_batch,
    probe_sql,
    retry_or_fail,
    without_unencodable,
)

MAX_IN_FLIGHT = 8

_HEAD = struct.Struct("!cI")  # message type, length (itself included)
_ROW = struct.Struct("!hiiiIi")  # DataRow: columns; len, position; len, xmin; len of body
_ROW_SIZE = _ROW.size
_SYNC = b"S\0\0\0\4"
_EXECUTE_SYNC = b"E\0\0\0\x09\0\0\0\0\0" + _SYNC
_BIND_HEAD = b"\0\0\0\1"  # parameters all in text format; one parameter
_BIND_TAIL = b"\0\1\0\1"  # one result format code for every column: binary


def _message(kind: bytes, payload: bytes) -> bytes:
    return kind + (len(payload) + 4).to_bytes(4, "big") + payload


def _text(value: bytes) -> bytes:
    return len(value).to_bytes(4, "big") + value


class _Batch:
    __slots__ = ("entity_set", "error", "held", "parses", "reads", "rows")

    def __init__(self, entity_set: str, reads: list[ReadRequest],
                 held: list[tuple[int, bytes] | None], parses: bool) -> None:
        self.entity_set = entity_set
        self.reads = reads
        self.held = held
        self.parses = parses
        """The batch carries the statement's Parse (the first use on this connection)."""
        self.rows: list[tuple[int, int, bytes | None]] = []
        """(position from 1, version, body or None) of each row received."""
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
                batch = in_flight[0]
                if 0 < n <= len(batch.reads):
                    batch.rows.append((n, version, body))
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
    """:class:`graphsec.storage.postgres.reads.PointReads` over one dedicated, pipelined
    connection spoken to in the wire protocol; see the module."""

    own_connection = True

    def __init__(self, pool: ConnectionPool, tables: dict[str, str],
                 cache: BodyCache | None) -> None:
        self.pool = pool
        self.cache = cache
        self._loop = asyncio.get_running_loop()
        self._sql = {name: probe_sql(table) for name, table in tables.items()}
        self._names = {name: f"graphsec_get_{i}".encode() for i, name in enumerate(tables)}
        self._queue: deque[ReadRequest] = deque()
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
        self._queue.append(ReadRequest(entity_set, tenant, entity_id, future))
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

    def _next_batch(self) -> list[ReadRequest]:
        return next_batch(self._queue)

    def _send(self, reads: list[ReadRequest]) -> None:
        if not reads:
            return
        assert self._transport is not None
        entity_set = reads[0].entity_set
        held = held_versions(self.cache, reads, time.monotonic())
        keys = encode_keys(reads, [None if h is None else h[0] for h in held])
        if keys is None:  # a str orjson refuses (a lone surrogate) names no stored entity
            self._send(without_unencodable(reads))
            return
        name = self._names[entity_set]
        parses = entity_set not in self._prepared
        out = []
        if parses:
            self._prepared.add(entity_set)
            out.append(_message(b"P", name + b"\0" + self._sql[entity_set].encode() + b"\0\0\0"))
        out.append(_message(b"B", b"\0" + name + b"\0" + _BIND_HEAD + _text(keys.encode())
                            + _BIND_TAIL))
        out.append(_EXECUTE_SYNC)
        self._transport.write(b"".join(out))
        self.in_flight.append(_Batch(entity_set, reads, held, parses))
        self.statements += 1

    # -- receiving ------------------------------------------------------------------------------

    def finish(self, parsed: bool) -> None:
        """ReadyForQuery: the oldest batch in flight is answered."""
        batch = self.in_flight.popleft()
        if batch.parses and not parsed:
            self._prepared.discard(batch.entity_set)  # its Parse failed: send it again next time
        if batch.error is not None:
            fail_reads(batch.reads, batch.error)
        else:
            answer(self.cache, batch.reads, batch.held, batch.rows)
        if self._queue and not self._flush_soon:
            self._flush()

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
        reads = [r for b in batches for r in b.reads if not r.future.done()]
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
