"""``graphsec seed``: fill a store with sample data, in bulk, from parallel worker processes.

Two passes over the tenants, each split across the workers: the first adds up each day's
scores for the comparative averages, the second generates the documents and writes them
(each worker with its own connection, 2,000 rows a transaction). Progress is shown with rich.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from queue import Empty
from typing import Any

from graphsec.sample import Generator
from graphsec.schema.security import (
    ENTITY_SETS,
    SECURE_SCORE_CONTROL_PROFILES,
    SECURE_SCORES,
    USER_SECURITY_PROFILES,
)
from graphsec.storage.bulk import open_bulk

BATCH = 2000


@dataclass(frozen=True)
class SeedPlan:
    tenants: int
    days: int
    controls: int
    users: int
    seed: int
    end: date

    def generator(self) -> Generator:
        return Generator(self.tenants, self.days, self.controls, self.users, self.seed, self.end)

    @property
    def total(self) -> int:
        return self.tenants * (self.days + self.controls + self.users)


@dataclass(frozen=True)
class SeedReport:
    secure_scores: int
    control_profiles: int
    user_profiles: int
    seconds: float
    first_tenant: str


def _chunks(n: int, parts: int) -> list[tuple[int, int]]:
    step = -(-n // parts)
    return [(i, min(n, i + step)) for i in range(0, n, step)]


Sums = dict[str, tuple[list[float], int]]


def _sums(plan: SeedPlan, first: int, last: int) -> Sums:
    return plan.generator().partial_sums(first, last)


def _write(plan: SeedPlan, sums: list[Sums], url: str,
           first: int, last: int, progress: Any) -> tuple[int, int, int]:
    gen = plan.generator()
    gen.set_averages(*sums)
    writer = open_bulk(url, ENTITY_SETS)
    counts = [0, 0, 0]
    try:
        for t in gen.tenants[first:last]:
            for i, (entity_set, docs) in enumerate((
                    (SECURE_SCORE_CONTROL_PROFILES, gen.control_profiles(t)),
                    (USER_SECURITY_PROFILES, gen.user_profiles(t)),
                    (SECURE_SCORES, gen.secure_scores(t)))):
                batch: list[dict[str, Any]] = []
                for doc in docs:
                    batch.append(doc)
                    if len(batch) >= BATCH:
                        counts[i] += writer.write(entity_set, batch)
                        progress.put(len(batch))
                        batch = []
                if batch:
                    counts[i] += writer.write(entity_set, batch)
                    progress.put(len(batch))
    finally:
        writer.close()
    return counts[2], counts[0], counts[1]


class _Callback:
    """Looks like the progress queue, calls a function instead."""

    def __init__(self, on_progress: Callable[[int], None] | None) -> None:
        self.on_progress = on_progress

    def put(self, n: int) -> None:
        if self.on_progress is not None:
            self.on_progress(n)


def seed(url: str, plan: SeedPlan, workers: int | None = None,
         on_progress: Callable[[int], None] | None = None) -> SeedReport:
    """Write ``plan``'s data to the database at ``url`` (schema already in place)."""
    started = time.perf_counter()
    workers = max(1, min(workers or os.cpu_count() or 1, plan.tenants))
    if workers == 1:  # in this process: no start-up cost for small data sets
        sink = _Callback(on_progress)
        totals = list(_write(plan, [_sums(plan, 0, plan.tenants)], url, 0, plan.tenants, sink))
    else:
        totals = _write_in_parallel(url, plan, workers, on_progress)
    finisher = open_bulk(url, ENTITY_SETS)
    try:
        finisher.analyze()
    finally:
        finisher.close()
    return SeedReport(totals[0], totals[1], totals[2], time.perf_counter() - started,
                      plan.generator().tenants[0].id if plan.tenants else "")


def _write_in_parallel(url: str, plan: SeedPlan, workers: int,
                       on_progress: Callable[[int], None] | None) -> list[int]:
    chunks = _chunks(plan.tenants, workers)
    open_bulk(url, ENTITY_SETS).close()  # one-time settings (SQLite's WAL) before the writers race for them
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(len(chunks)) as pool:
        parts = pool.starmap(_sums, [(plan, a, b) for a, b in chunks])
        queue = manager.Queue()
        pending = pool.starmap_async(_write, [(plan, parts, url, a, b, queue) for a, b in chunks])
        while not pending.ready() or not queue.empty():
            try:
                n = queue.get(timeout=0.2)
            except Empty:
                continue
            if on_progress is not None:
                on_progress(n)
        results = pending.get()
    return [sum(r[i] for r in results) for i in range(3)]
