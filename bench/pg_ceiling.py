"""How fast graphsec's PostgreSQL store answers the benchmark's reads with no HTTP in front.

The bare app in ``run.py`` is the ceiling of the HTTP side; this measures the other side: the
store's own ``get``/``list`` calls (asyncpg, graphsec's pool and statements, uvloop), from
``--concurrency`` tasks in one process, as one server worker would issue them. A server
worker cannot serve a scenario faster than its store answers it, so comparing this with the
bare app's rate in ``RESULTS.md`` shows how much of a PostgreSQL target is reachable at all on
the machine.

    python bench/pg_ceiling.py --database postgresql://postgres@127.0.0.1/graphsec_bench_10k

The database must hold ``graphsec seed`` data (run.py's ``--keep-data`` keeps one). ``--reads
prepared,batch`` measures the store once with each reader by id (``GRAPHSEC_PG_READS``), in
turn, with ``--scenarios get_by_id`` only the reads by id: a first look at the readers, in one
process, before ``bench/compare.py`` measures them behind HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import date, timedelta
from typing import Any

import orjson
import uvloop

from graphsec.odata.filter import parse_filter
from graphsec.odata.query import ListQuery, OrderKey
from graphsec.schema.security import ENTITY_SETS, SECURE_SCORE, SECURE_SCORES
from graphsec.storage.postgres import PostgresStore

ORDER = (OrderKey(("createdDateTime",), True), OrderKey(("id",), True))


async def measure(store: PostgresStore, call: Any, seconds: float,
                  concurrency: int) -> tuple[float, float]:
    """Calls per second, and this process's CPU time per call in µs."""
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(k: int) -> None:
        nonlocal done
        i = k
        while time.perf_counter() < stop:
            await call(i)
            done += 1
            i += concurrency

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    cpu_us = (time.process_time() - cpu) / max(done, 1) * 1e6
    return done / (time.perf_counter() - started), cpu_us


async def main(args: argparse.Namespace) -> None:
    for reads in args.reads.split(","):
        print(f"| reads by id: {reads} | per second | CPU µs per call |", flush=True)
        await measure_store(args, reads)


async def measure_store(args: argparse.Namespace, reads: str) -> None:
    store = PostgresStore(args.database, ENTITY_SETS, pool_size=args.pool_size, reads=reads)
    await store.open()
    try:
        tenant = await store.pool.fetchval(
            "SELECT tenant_id FROM secure_scores ORDER BY tenant_id LIMIT 1")
        first = await store.list(tenant, SECURE_SCORES, ListQuery(order=ORDER, limit=999))
        ids = [orjson.loads(d)["id"] for d in first.docs]
        newest = date.fromisoformat(orjson.loads(first.docs[0])["createdDateTime"][:10])
        windows = []
        for k in range(20):
            start = newest - timedelta(days=800 - k * 30)
            text = (f"createdDateTime ge {start}T00:00:00Z and "
                    f"createdDateTime lt {start + timedelta(days=180)}T00:00:00Z")
            windows.append(parse_filter(text, SECURE_SCORE))
        scenarios = {
            "get_by_id": lambda i: store.get(tenant, SECURE_SCORES, ids[i % len(ids)]),
            "list_top100": lambda i: store.list(tenant, SECURE_SCORES,
                                                ListQuery(order=ORDER, limit=100)),
            "filter_count": lambda i: store.list(tenant, SECURE_SCORES, ListQuery(
                order=ORDER, limit=100, filter=windows[i % len(windows)], count=True)),
        }
        for name, call in scenarios.items():
            if args.scenarios and name not in args.scenarios.split(","):
                continue
            await measure(store, call, 1.0, args.concurrency)  # warm-up
            rate, cpu_us = await measure(store, call, args.duration, args.concurrency)
            print(f"| {name} | {rate:,.0f} | {cpu_us:.1f} |", flush=True)
    finally:
        await store.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database", required=True)
    p.add_argument("--duration", type=float, default=8.0)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--pool-size", type=int, default=10)
    p.add_argument("--reads", default="prepared", metavar="READER[,READER…]",
                   help="GRAPHSEC_PG_READS values to measure in turn (graphsec.config.PG_READS)")
    p.add_argument("--scenarios", default="", metavar="A,B",
                   help="only these of get_by_id, list_top100, filter_count")
    uvloop.run(main(p.parse_args()))
