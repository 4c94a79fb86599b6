"""graphsec's PostgreSQL connection pool: bounded, fair, and never hands out a connection in an
unknown state."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from graphsec.storage.postgres.pool import ConnectionPool, PoolClosed
from tests.support.activity import until_running


async def backends(pool: ConnectionPool) -> set[int]:
    pids = set()
    async with pool.acquire() as conn:
        pids.add(conn.get_server_pid())
    return pids


async def test_never_opens_more_than_its_size(postgres_url: str) -> None:
    pool = ConnectionPool(postgres_url, 3)
    await pool.open()
    peak = 0
    pids: set[int] = set()

    async def one(i: int) -> int:
        nonlocal peak
        async with pool.acquire() as conn:
            peak = max(peak, pool.open_connections)
            pids.add(conn.get_server_pid())
            await conn.execute("SELECT pg_sleep(0.005)")
            value: int = await conn.fetchval("SELECT $1::int", i)
            return value

    try:
        results = await asyncio.gather(*(one(i) for i in range(60)))
        assert results == list(range(60))
        assert peak == 3
        assert len(pids) == 3
    finally:
        await pool.close()
    assert pool.open_connections == 0


async def test_a_database_error_keeps_the_connection(postgres_url: str) -> None:
    pool = ConnectionPool(postgres_url, 1)
    await pool.open()
    try:
        first = await backends(pool)
        with pytest.raises(asyncpg.DivisionByZeroError):
            await pool.fetchval("SELECT 1 / 0")
        assert await backends(pool) == first
        assert await pool.fetchval("SELECT 41 + 1") == 42
    finally:
        await pool.close()


async def test_a_query_cancelled_midway_costs_its_connection_not_the_pool(postgres_url: str) -> None:
    pool = ConnectionPool(postgres_url, 1)
    await pool.open()
    try:
        first = await backends(pool)
        task = asyncio.create_task(pool.fetchval("SELECT pg_sleep(5)"))
        await until_running(postgres_url, "SELECT pg_sleep(5)")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert pool.open_connections == 0  # discarded: its state was unknown
        assert await pool.fetchval("SELECT 7") == 7  # a new one takes its place
        assert await backends(pool) != first
    finally:
        await pool.close()


async def test_a_transaction_left_open_is_not_handed_out_again(postgres_url: str) -> None:
    pool = ConnectionPool(postgres_url, 1)
    await pool.open()
    try:
        async with pool.acquire() as conn:
            await conn.execute("BEGIN")
            await conn.execute("CREATE TEMP TABLE leftover (x int)")
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT to_regclass('pg_temp.leftover')") is None
    finally:
        await pool.close()


async def test_waiters_are_served_in_order_and_a_cancelled_one_frees_its_turn(
        postgres_url: str) -> None:
    pool = ConnectionPool(postgres_url, 1)
    await pool.open()
    order: list[str] = []

    async def use(name: str) -> None:
        async with pool.acquire():
            order.append(name)

    try:
        async with pool.acquire():
            first = asyncio.create_task(use("first"))
            gone = asyncio.create_task(use("gone"))
            second = asyncio.create_task(use("second"))
            await asyncio.sleep(0)  # each queues in its first step
            gone.cancel()
            await asyncio.wait([gone])
        await asyncio.wait_for(asyncio.gather(first, second), 5)
        assert order == ["first", "second"]
        assert gone.cancelled()
        assert await pool.fetchval("SELECT 1") == 1
    finally:
        await pool.close()


async def test_close_fails_waiters_and_refuses_new_work(postgres_url: str) -> None:
    pool = ConnectionPool(postgres_url, 1)
    await pool.open()
    async with pool.acquire():
        waiter = asyncio.create_task(pool.fetchval("SELECT 1"))
        await asyncio.sleep(0)  # it queues in its first step
        await pool.close()
        with pytest.raises(PoolClosed):
            await waiter
    assert pool.open_connections == 0  # the one in use closed when it came back
    with pytest.raises(PoolClosed):
        await pool.fetchval("SELECT 1")


async def test_a_wrong_url_fails_at_open() -> None:
    pool = ConnectionPool("postgresql://postgres@127.0.0.1:1/nothing", 2)
    with pytest.raises(ConnectionRefusedError):
        await pool.open()
    assert pool.open_connections == 0


async def test_a_place_freed_by_a_lost_connection_goes_to_the_waiter_without_outgrowing(
        postgres_url: str) -> None:
    """A connection given back unhealthy frees its place for the first waiter; a take() that
    comes before the waiter has connected must wait too, not open a connection in that place."""
    pool = ConnectionPool(postgres_url, 2)
    await pool.open()
    backends_seen: list[int] = []
    real_connect = asyncpg.connect

    async def counting_connect(*args: object, **kwargs: object) -> asyncpg.Connection:
        conn = await real_connect(*args, **kwargs)
        backends_seen.append(pool.open_connections)
        return conn

    try:
        a = await pool.take()
        b = await pool.take()
        asyncpg.connect = counting_connect
        waiter = asyncio.ensure_future(pool.take())
        await asyncio.sleep(0)  # it queues

        async def lose_and_take_again() -> asyncpg.Connection:
            # as a batch of reads retried after its connection was lost: in one step
            pool.give_back(a, healthy=False)  # lost: its place is the waiter's
            return await pool.take()  # before the waiter has connected

        late = asyncio.ensure_future(lose_and_take_again())
        first = await asyncio.wait_for(waiter, 5)
        await asyncio.sleep(0.05)
        assert not late.done()  # waits for a place like everyone else
        assert pool.open_connections == 2
        pool.give_back(first, healthy=True)
        second = await asyncio.wait_for(late, 5)
        assert second is first
        assert max(backends_seen) <= 2
        pool.give_back(second, healthy=True)
        pool.give_back(b, healthy=True)
    finally:
        asyncpg.connect = real_connect
        await pool.close()
    assert pool.open_connections == 0


async def test_finding_an_idle_connection_closed_tells_on_lost(postgres_url: str) -> None:
    lost: list[bool] = []
    pool = ConnectionPool(postgres_url, 2, on_lost=lambda: lost.append(True))
    await pool.open()
    try:
        conn = await pool.take()
        pool.give_back(conn, healthy=True)
        await conn.close()  # closed while idle, as a server restart does
        assert await pool.fetchval("SELECT 7") == 7  # a fresh connection
        assert lost == [True]
        pool.discard_idle()
        assert lost == [True, True]
    finally:
        await pool.close()


async def test_a_server_started_at_another_time_tells_on_lost(postgres_url: str) -> None:
    """A new connection that reaches a server started at another time than the last one (a
    restart, a failover) tells ``on_lost``: row versions seen before may be given out again."""
    lost: list[bool] = []
    pool = ConnectionPool(postgres_url, 2, on_lost=lambda: lost.append(True))
    await pool.open()
    try:
        started = pool.server_started
        assert started is not None
        assert lost == []
        pool.server_started = "a server that was started at another time"
        a = await pool.take()  # the idle one: no new connection, nothing learnt
        assert lost == []
        b = await pool.take()  # a new connection
        assert lost == [True]
        assert pool.server_started == started
        pool.give_back(a, healthy=True)
        pool.give_back(b, healthy=True)
    finally:
        await pool.close()
