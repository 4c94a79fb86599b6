"""The wire reader's protocol parser without a server (``storage/postgres/reads/wire.py``).

A reader is attached to a transport that records what it writes; the answers a server gives
(built here message by message, as the protocol's documentation lays them out) are fed to
``data_received`` split at every byte, interleaved with the messages a server may send at any
time (NoticeResponse, ParameterStatus, NotificationResponse), and with an ErrorResponse in the
middle of a batch. Each read's future must resolve as the server's answer says.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import asyncpg
import orjson
import pytest

from graphsec.errors import ServiceUnavailable
from graphsec.storage.postgres.cache import BodyCache
from graphsec.storage.postgres.reads.wire import WireReads

A = "11111111-1111-1111-1111-111111111111"
B = "22222222-2222-2222-2222-222222222222"
SCORES = "secureScores"


# -- the server's side of the protocol -----------------------------------------------------------

def message(kind: bytes, payload: bytes = b"") -> bytes:
    return kind + struct.pack("!I", len(payload) + 4) + payload


def data_row(n: int, version: int, body: bytes | None) -> bytes:
    """A row of the probe statement, in binary: the key's position, ``xmin``, the body."""
    body_part = struct.pack("!i", -1) if body is None else struct.pack("!i", len(body)) + body
    return message(b"D", struct.pack("!hiiiI", 3, 4, n, 4, version) + body_part)


PARSE_COMPLETE = message(b"1")
BIND_COMPLETE = message(b"2")
READY = message(b"Z", b"I")
NOTICE = message(b"N", b"SNOTICE\0VNOTICE\0C00000\0Mthe server speaks\0\0")
PARAMETER_STATUS = message(b"S", b"application_name\0graphsec\0")
NOTIFICATION = message(b"A", struct.pack("!I", 4242) + b"channel\0payload\0")


def command_complete(rows: int) -> bytes:
    return message(b"C", f"SELECT {rows}".encode() + b"\0")


def error(sqlstate: str, text: str) -> bytes:
    return message(b"E", b"SERROR\0VERROR\0C" + sqlstate.encode() + b"\0M" + text.encode()
                   + b"\0\0")


def answer(rows: list[bytes], parse: bool) -> bytes:
    """What a server sends for one Bind/Execute/Sync (after a Parse when ``parse``)."""
    return ((PARSE_COMPLETE if parse else b"") + BIND_COMPLETE + b"".join(rows)
            + command_complete(len(rows)) + READY)


# -- the client's side -------------------------------------------------------------------------

class RecordingTransport(asyncio.WriteTransport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.protocol: asyncio.BaseProtocol | None = None

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def is_closing(self) -> bool:
        return False

    def write(self, data: Any) -> None:
        self.written.append(bytes(data))


class Connection:
    """What the reader uses of asyncpg's connection: its transport, and terminating it."""

    def __init__(self) -> None:
        self._transport = RecordingTransport()

    def terminate(self) -> None:
        pass


class Pool:
    size = 1

    def __init__(self) -> None:
        self.conn = Connection()

    async def open_dedicated(self) -> Connection:
        return self.conn

    def discard_idle(self) -> None:
        pass


async def open_reader(cache: BodyCache | None = None) -> tuple[WireReads, Callable[[bytes], None]]:
    """A wire reader on a recording transport, and what feeds it the server's bytes."""
    pool: Any = Pool()
    reads = WireReads(pool, {SCORES: "secure_scores", "userSecurityProfiles": "usp"}, cache)
    assert await reads.open()
    protocol: Any = pool.conn._transport.protocol
    return reads, protocol.data_received


async def outcomes(futures: Sequence[asyncio.Future[bytes | None]]) -> list[Any]:
    """What each read returned, or the exception it raised."""
    return await asyncio.gather(*futures, return_exceptions=True)


async def turns(n: int = 3) -> None:
    """Let the event loop run the reads' tasks and the reader's flush."""
    for _ in range(n):
        await asyncio.sleep(0)


def messages(sent: bytes) -> list[tuple[bytes, bytes]]:
    """The frontend messages in ``sent``: (type, payload)."""
    out = []
    pos = 0
    while pos < len(sent):
        length = struct.unpack_from("!I", sent, pos + 1)[0]
        out.append((sent[pos:pos + 1], sent[pos + 5:pos + 1 + length]))
        pos += 1 + length
    return out


def bound_keys(sent: bytes) -> list[list[Any]]:
    """The one parameter of the last Bind in ``sent``: the keys, as JSON text."""
    body = [payload for kind, payload in messages(sent) if kind == b"B"][-1]
    name_end = body.index(b"\0", body.index(b"\0") + 1)  # after the portal's and the name
    formats, params = struct.unpack_from("!hh", body, name_end + 1)
    assert (formats, params) == (0, 1)  # one parameter, in text format
    size = struct.unpack_from("!i", body, name_end + 5)[0]
    keys: list[list[Any]] = orjson.loads(body[name_end + 9:name_end + 9 + size])
    assert struct.unpack_from("!hh", body, name_end + 9 + size) == (1, 1)  # rows in binary
    return keys


@pytest.fixture
async def reads() -> AsyncIterator[tuple[WireReads, Callable[[bytes], None]]]:
    reader = await open_reader()
    yield reader
    await reader[0].close()


# -- the tests ---------------------------------------------------------------------------------

async def test_a_batch_is_one_bind_of_one_json_parameter() -> None:
    reads, _ = await open_reader()
    tasks = [asyncio.ensure_future(reads.get(SCORES, t, i)) for t, i in ((A, "s1"), (B, "s2"))]
    await turns()
    transport: Any = reads._transport
    sent = b"".join(transport.written)
    # Parse (the statement's first use on this connection), Bind, Execute, Sync: one write
    assert [kind for kind, _ in messages(sent)] == [b"P", b"B", b"E", b"S"]
    assert len(transport.written) == 1
    assert bound_keys(sent) == [[A, "s1", None], [B, "s2", None]]
    await reads.close()
    await asyncio.gather(*tasks, return_exceptions=True)


async def two_batches_in_flight(cache: BodyCache | None = None) -> tuple[
        WireReads, Callable[[bytes], None], list[asyncio.Future[bytes | None]]]:
    """Reads in two turns: two batches sent, neither answered yet."""
    reads, feed = await open_reader(cache)
    first = [asyncio.ensure_future(reads.get(SCORES, A, i)) for i in ("s1", "s2", "s3")]
    await turns()
    second = [asyncio.ensure_future(reads.get(SCORES, B, "s1"))]
    await turns()
    assert len(reads.in_flight) == 2
    return reads, feed, [*first, *second]


ANSWERS = (answer([data_row(1, 7, b'{"id":"s1"}'), data_row(3, 9, b'{"id":"s3"}')], parse=True)
           + answer([data_row(1, 11, b'{"id":"s1","t":"B"}')], parse=False))
EXPECTED = [b'{"id":"s1"}', None, b'{"id":"s3"}', b'{"id":"s1","t":"B"}']


@pytest.mark.parametrize("split", range(len(ANSWERS) + 1))
async def test_answers_split_at_any_byte_resolve_each_read(split: int) -> None:
    reads, feed, futures = await two_batches_in_flight()
    feed(ANSWERS[:split])
    feed(ANSWERS[split:])
    assert await outcomes(futures) == EXPECTED
    assert not reads.in_flight
    await reads.close()


async def test_answers_fed_a_byte_at_a_time_resolve_each_read() -> None:
    reads, feed, futures = await two_batches_in_flight()
    for i in range(len(ANSWERS)):
        feed(ANSWERS[i:i + 1])
    assert await outcomes(futures) == EXPECTED
    await reads.close()


@pytest.mark.parametrize("extra", [NOTICE, PARAMETER_STATUS, NOTIFICATION,
                                   NOTICE + PARAMETER_STATUS + NOTIFICATION],
                         ids=["notice", "parameter-status", "notification", "all"])
async def test_messages_the_server_may_send_at_any_time_change_no_answer(extra: bytes) -> None:
    reads, feed, futures = await two_batches_in_flight()
    stream = b""
    pos = 0
    while pos < len(ANSWERS):  # the extra messages between every two messages of the answer
        length = struct.unpack_from("!I", ANSWERS, pos + 1)[0]
        stream += extra + ANSWERS[pos:pos + 1 + length]
        pos += 1 + length
    stream += extra
    for split in (1, 7, len(extra) + 3, len(stream) // 2):
        reads2, feed2, futures2 = await two_batches_in_flight()
        feed2(stream[:split])
        feed2(stream[split:])
        assert await outcomes(futures2) == EXPECTED
        await reads2.close()
    feed(stream)
    assert await outcomes(futures) == EXPECTED
    await reads.close()


async def test_an_error_in_the_middle_of_a_batch_fails_that_batch_only() -> None:
    """A row, then the error (a statement can fail after its first rows): the batch's reads
    get asyncpg's exception for the SQLSTATE, the batch pipelined after it is answered."""
    reads, feed, futures = await two_batches_in_flight()
    failed = (PARSE_COMPLETE + BIND_COMPLETE + data_row(1, 7, b'{"id":"s1"}')
              + error("42P01", 'relation "secure_scores" does not exist') + READY)
    stream = failed + answer([data_row(1, 11, b'{"id":"s1","t":"B"}')], parse=False)
    for split in range(len(stream) + 1):
        reads2, feed2, futures2 = await two_batches_in_flight()
        feed2(stream[:split])
        feed2(stream[split:])
        got = await outcomes(futures2)
        assert all(isinstance(e, asyncpg.UndefinedTableError) for e in got[:3]), got
        assert got[3] == b'{"id":"s1","t":"B"}'
        await reads2.close()
    feed(stream)
    assert isinstance((await outcomes(futures))[0], asyncpg.UndefinedTableError)
    await reads.close()


async def test_a_failed_parse_is_sent_again_with_the_next_batch() -> None:
    reads, feed = await open_reader()
    first = asyncio.ensure_future(reads.get(SCORES, A, "s1"))
    await turns()
    feed(error("42P01", "no such table") + READY)  # Parse failed: the rest was skipped
    with pytest.raises(asyncpg.UndefinedTableError):
        await first
    transport: Any = reads._transport
    transport.written.clear()
    again = asyncio.ensure_future(reads.get(SCORES, A, "s1"))
    await turns()
    assert transport.written[0].startswith(b"P")
    feed(answer([data_row(1, 7, b"{}")], parse=True))
    assert await again == b"{}"
    await reads.close()


async def test_a_body_left_out_is_the_one_held_and_a_new_one_is_kept() -> None:
    cache = BodyCache(10_000)
    cache.put((SCORES, A, "s1"), 7, b'{"held":true}')
    cache.put((SCORES, A, "s2"), 8, b'{"old":true}')
    reads, feed = await open_reader(cache)
    futures = [asyncio.ensure_future(reads.get(SCORES, A, i)) for i in ("s1", "s2")]
    await turns()
    transport: Any = reads._transport
    assert bound_keys(b"".join(transport.written)) == [[A, "s1", 7], [A, "s2", 8]]
    feed(answer([data_row(1, 7, None), data_row(2, 12, b'{"new":true}')], parse=True))
    assert [await f for f in futures] == [b'{"held":true}', b'{"new":true}']
    assert cache.held((SCORES, A, "s2"), time.monotonic()) == (12, b'{"new":true}')
    await reads.close()


async def test_a_lost_connection_sends_the_reads_again_on_a_new_one() -> None:
    """Both batches' reads go out again, as one batch, with the statement's Parse (a new
    connection has no prepared statement); lost again, they fail with a 503."""
    reads, _, futures = await two_batches_in_flight()
    lost: Any = reads._protocol
    lost.connection_lost(ConnectionResetError("reset"))
    await turns(5)  # the reader reconnects (on the same recording transport) and sends again
    assert [len(b.reads) for b in reads.in_flight] == [4]
    transport: Any = reads._transport
    assert bound_keys(transport.written[-1]) == [[A, "s1", None], [A, "s2", None],
                                                [A, "s3", None], [B, "s1", None]]
    protocol: Any = reads._protocol
    protocol.data_received(answer([data_row(1, 7, b'{"id":"s1"}'), data_row(3, 9, b'{"id":"s3"}'),
                                   data_row(4, 11, b'{"id":"s1","t":"B"}')], parse=True))
    assert [await f for f in futures] == EXPECTED
    await reads.close()


async def test_reads_lost_twice_fail_with_a_503() -> None:
    reads, _ = await open_reader()
    future = asyncio.ensure_future(reads.get(SCORES, A, "s1"))
    await turns()
    for _ in range(2):
        protocol: Any = reads._protocol
        protocol.connection_lost(ConnectionResetError("reset"))
        await turns(5)
    with pytest.raises(ServiceUnavailable):
        await future
    await reads.close()


async def test_reads_of_two_entity_sets_in_one_turn_are_two_batches(
        reads: tuple[WireReads, Callable[[bytes], None]]) -> None:
    reader, feed = reads
    futures = [asyncio.ensure_future(reader.get(SCORES, A, "s1")),
               asyncio.ensure_future(reader.get("userSecurityProfiles", A, "u1")),
               asyncio.ensure_future(reader.get(SCORES, A, "s2"))]
    await turns()
    assert [len(b.reads) for b in reader.in_flight] == [2, 1]
    feed(answer([data_row(2, 5, b"s2")], parse=True) + answer([data_row(1, 6, b"u1")], parse=True))
    assert [await f for f in futures] == [None, b"u1", b"s2"]
