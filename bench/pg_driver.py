"""Which PostgreSQL driver reads one row by primary key fastest here (asyncpg vs psycopg 3).

Run: python bench/pg_driver.py [postgresql://postgres@127.0.0.1:5432/test]
Reads a 2 KB JSON document by primary key N times from 16 concurrent tasks over a pool of 8
connections and prints reads per second for each driver. Not part of the test suite.
"""

from __future__ import annotations

import asyncio
import sys
import time

import asyncpg
import psycopg
import psycopg_pool

DSN = sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/test"
N, TASKS = 20_000, 16
DOC = '{"x": "' + "a" * 2000 + '"}'


async def setup() -> None:
    conn = await asyncpg.connect(DSN)
    await conn.execute("DROP TABLE IF EXISTS bench_pk; CREATE TABLE bench_pk "
                       "(tenant text, id text, doc jsonb, PRIMARY KEY (tenant, id))")
    await conn.executemany("INSERT INTO bench_pk VALUES ('t', $1, $2)",
                           [(f"id{i}", DOC) for i in range(10_000)])
    await conn.close()


async def run_asyncpg() -> float:
    pool = await asyncpg.create_pool(DSN, min_size=8, max_size=8)

    async def worker(k: int) -> None:
        for i in range(N // TASKS):
            async with pool.acquire() as c:
                await c.fetchval("SELECT doc::text FROM bench_pk WHERE tenant=$1 AND id=$2",
                                 "t", f"id{(i * 7 + k) % 10_000}")

    t = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(TASKS)))
    dt = time.perf_counter() - t
    await pool.close()
    return N / dt


async def run_psycopg() -> float:
    pool = psycopg_pool.AsyncConnectionPool(DSN, min_size=8, max_size=8, open=False)
    await pool.open()

    async def worker(k: int) -> None:
        for i in range(N // TASKS):
            async with pool.connection() as c:
                cur = await c.execute("SELECT doc::text FROM bench_pk WHERE tenant=%s AND id=%s",
                                      ("t", f"id{(i * 7 + k) % 10_000}"), prepare=True)
                await cur.fetchone()

    t = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(TASKS)))
    dt = time.perf_counter() - t
    await pool.close()
    return N / dt


async def main() -> None:
    await setup()
    for name, fn in (("asyncpg", run_asyncpg), ("psycopg", run_psycopg)) * 2:
        print(f"{name:8s} {await fn():8.0f} reads/s  (psycopg {psycopg.__version__}, "
              f"asyncpg {asyncpg.__version__})")
    conn = await asyncpg.connect(DSN)
    await conn.execute("DROP TABLE bench_pk")
    await conn.close()


asyncio.run(main())
