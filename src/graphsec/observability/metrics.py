"""Prometheus metrics of a graphsec server, through ``prometheus-client``.

One :class:`Metrics` per worker process. With several workers (and with one, under
``graphsec serve``) ``prometheus-client``'s multiprocess mode is on: ``graphsec serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh, empty folder (``multiprocess.py``) before
the workers start, each worker's values live in memory-mapped files there, and a scrape, whichever
worker answers it, adds up every worker's (``MultiProcessCollector``). Without that variable (an
app built in-process, as the tests do) the values stay in this process.

The names, labels and what they count are in docs/operations.md. The hot path is one dictionary
look-up, one counter and one histogram update per request: the label children are made once per
(entity set, method, status) and kept.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from graphsec.observability.multiprocess import MULTIPROCESS_ENV, running

CONTENT_TYPE = CONTENT_TYPE_LATEST
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds: reads by id take well under a millisecond, lists a few; 10 s is the statement
budget's default."""
METHODS = frozenset({"GET", "HEAD", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"})
"""Methods counted under their own name; any other is ``other`` (labels stay bounded)."""
POOL_REFRESH_SECONDS = 1.0

ConnectionCounts = Callable[[], tuple[int, int]]
"""The database connections of this process: (in use, idle)."""


def forget_dead_workers(folder: str) -> None:
    """Drop the live gauges of workers no longer running (a worker granian started again after
    one died): their last pool figures would stay in the sum. Their counters stay: what they
    counted happened."""
    for name in os.listdir(folder):
        if name.startswith("gauge_live") and name.endswith(".db"):
            pid = name[:-3].rsplit("_", 1)[-1]
            if pid.isdigit() and not running(int(pid)):
                mark_process_dead(int(pid), folder)  # type: ignore[no-untyped-call]


class Metrics:
    """The metrics of one process; :meth:`render` answers a scrape for the whole server."""

    def __init__(self, connections: ConnectionCounts | None = None) -> None:
        self.multiprocess_dir = os.environ.get(MULTIPROCESS_ENV) or None
        """Where every worker's values are (None: this process only)."""
        if self.multiprocess_dir and values.ValueClass is values.MutexValue:
            raise RuntimeError(f"prometheus-client was imported before {MULTIPROCESS_ENV} was "
                               "set: each worker would count alone (multiprocess.py)")
        self.content_type = CONTENT_TYPE
        if self.multiprocess_dir:
            forget_dead_workers(self.multiprocess_dir)
        self._connections = connections
        registry = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "graphsec_requests", "HTTP requests answered, by entity set, method and status.",
            ("entity_set", "method", "status"), registry=registry)
        self.duration = Histogram(
            "graphsec_request_duration_seconds",
            "Time from a request's arrival to its response sent, by entity set and method.",
            ("entity_set", "method"), buckets=BUCKETS, registry=registry)
        self.throttled = Counter(
            "graphsec_throttled", "Requests refused with 429 by the throttling limits.",
            ("entity_set",), registry=registry)
        self.chaos = Counter(
            "graphsec_chaos_injected",
            "Requests chaos acted on: the failure status drawn, or 'latency' for a delay only.",
            ("status",), registry=registry)
        self.pool = Gauge(
            "graphsec_db_pool_connections", "Database connections held, in use or idle.",
            ("state",), registry=registry, multiprocess_mode="livesum")
        self._in_use = self.pool.labels(state="in_use")
        self._idle = self.pool.labels(state="idle")
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._pool_due = 0.0

    def request(self, entity_set: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration."""
        key = (entity_set, method, status)
        children = self._children.get(key)
        if children is None:
            children = self._child(key)
        children[0].inc()
        children[1].observe(seconds)
        if self._connections is not None:
            now = time.monotonic()
            if now >= self._pool_due:
                self._refresh_pool(now)

    def _child(self, key: tuple[str, str, int]) -> tuple[Counter, Histogram]:
        entity_set, method, status = key
        label = method if method in METHODS else "other"
        children = (self.requests.labels(entity_set, label, str(status)),
                    self.duration.labels(entity_set, label))
        if method in METHODS:  # other methods are not kept: clients choose them freely
            self._children[key] = children
        return children

    def throttled_request(self, entity_set: str) -> None:
        self.throttled.labels(entity_set).inc()

    def chaos_struck(self, status: int | None) -> None:
        self.chaos.labels("latency" if status is None else str(status)).inc()

    def _refresh_pool(self, now: float) -> None:
        assert self._connections is not None
        in_use, idle = self._connections()
        self._in_use.set(in_use)
        self._idle.set(idle)
        self._pool_due = now + POOL_REFRESH_SECONDS

    def render(self) -> bytes:
        """The Prometheus text exposition of every worker's metrics (this process's alone
        without multiprocess mode)."""
        if self._connections is not None:
            self._refresh_pool(time.monotonic())
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
