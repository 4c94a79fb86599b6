"""The throttle decision and the shared state it runs on, on both stores.

``decide`` (the steps in Python, used by the SQLite state) and the PostgreSQL function (the
same steps in PL/pgSQL) go through the same cases here, with short periods so that waiting out
a ``Retry-After`` takes a second or two. Two state objects on one database stand
for two workers: what one consumes, the other sees.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from graphsec.pressure.config import Throttling
from graphsec.pressure.throttle import DETECTIONS, SCORES_AND_PROFILES, limits_for
from graphsec.pressure.windows import Concurrency, Rate, ThrottleState, decide
from graphsec.storage.throttle import open_state


def test_limits_follow_graph_s_table_for_security() -> None:
    t = Throttling(enabled=True)
    rates, concurrency = limits_for(t, "app", "tid", "secureScores")
    assert {(r.key, r.limit, r.period) for r in rates} == {
        ("g|app", 130_000, 10.0), ("m|app|tid", 150, 60.0), ("t|app|tid", 10_000, 600.0)}
    assert concurrency == Concurrency("c|app|tid", 4)
    rates, concurrency = limits_for(t, "app", "tid", "secureScoreControlProfiles")
    assert {r.key for r in rates} == {"g|app", "t|app|tid"}  # not the 150/minute one
    assert concurrency is not None
    rates, concurrency = limits_for(t, "app", "tid", "userSecurityProfiles")
    assert {r.key for r in rates} == {"g|app", "m|app|tid"}  # /security, not secure score's
    assert concurrency is None
    assert [r.key for r in rates] == sorted(r.key for r in rates)  # the locking order
    assert "secureScores" in DETECTIONS & SCORES_AND_PROFILES


def test_decide_counts_in_a_window_opened_by_the_first_request() -> None:
    rate = Rate("k", 3, 3.0)  # 3 in any window of 3 s opened by a request
    state: dict[str, tuple[float, int]] = {}
    now = 1000.0
    for n in range(3):
        wait, changes = decide((rate,), state, now + n)  # within the window, however spread
        assert wait == 0
        state.update(changes)
    wait, changes = decide((rate,), state, now + 2.1)
    assert (wait, changes) == (1, {})  # 0.9 s until the window closes, rounded up
    wait, _ = decide((rate,), state, now + 0.5)
    assert wait == 3
    wait, changes = decide((rate,), state, now + 3.0)  # closed: this request opens a new one
    assert (wait, changes) == (0, {"k": (now + 3.0, 1)})


REDIS_URL = os.environ.get("GRAPHSEC_TEST_REDIS", "redis://127.0.0.1:6379/15")


def redis_url() -> str:
    """The test Redis; skipped when none answers, except on CI (``CI=true``): a failure."""
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return REDIS_URL
    except OSError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("no Redis at 127.0.0.1:6379")


@pytest.fixture(params=["local", "sqlite", "postgresql", "redis"])
def where(request: pytest.FixtureRequest,
          tmp_path: Path) -> tuple[str, Path | None, int, str | None]:
    """Where the states are: one process (SQLite, one worker), a SQLite file shared by two
    workers, the session's PostgreSQL database, or Redis."""
    if request.param == "local":
        return "sqlite:///unused", tmp_path / "graphsec.db", 1, None
    if request.param == "sqlite":
        return "sqlite:///unused", tmp_path / "graphsec.db", 2, None
    if request.param == "redis":
        return "sqlite:///unused", tmp_path / "graphsec.db", 2, redis_url()
    return request.getfixturevalue("postgres_url"), None, 2, None


@pytest.fixture
async def states(where: tuple[str, Path | None, int, str | None]
                 ) -> AsyncIterator[tuple[ThrottleState, ThrottleState]]:
    """Two states on one store, as two workers have (one process: the same state)."""
    first = open_state(*where)
    second = first if where[2] == 1 else open_state(*where)
    yield first, second
    await first.close()
    await second.close()


def test_one_worker_on_sqlite_keeps_the_state_in_memory(tmp_path: Path) -> None:
    from graphsec.pressure.windows import LocalThrottleState
    from graphsec.storage.throttle.sqlite import SQLiteThrottleState

    assert isinstance(open_state("sqlite:///x", tmp_path / "x.db", 1), LocalThrottleState)
    assert isinstance(open_state("sqlite:///x", tmp_path / "x.db", 2), SQLiteThrottleState)


def _key() -> str:
    return uuid.uuid4().hex  # the PostgreSQL state outlives a test: keys of its own


async def test_the_burst_is_shared_by_every_worker_and_early_retries_are_refused(
        states: tuple[ThrottleState, ThrottleState]) -> None:
    a, b = states
    rate = Rate(_key(), 4, 1.5)  # 4 in a window of 1.5 s
    admitted = [await (a if n % 2 else b).admit((rate,), None, _key()) for n in range(4)]
    assert admitted == [0, 0, 0, 0]
    wait = await a.admit((rate,), None, _key())  # the fifth, on either worker
    assert wait in (1, 2)
    assert await b.admit((rate,), None, _key()) >= 1  # an early retry, elsewhere: refused
    await asyncio.sleep(1.6)  # the window has closed
    assert await b.admit((rate,), None, _key()) == 0


async def test_a_refused_request_consumes_nothing_in_the_other_buckets(
        states: tuple[ThrottleState, ThrottleState]) -> None:
    a, _ = states
    roomy, tight = Rate(_key(), 100, 60.0), Rate(_key(), 1, 60.0)
    assert await a.admit(tuple(sorted((roomy, tight), key=lambda r: r.key)), None, _key()) == 0
    for _ in range(5):
        assert await a.admit(tuple(sorted((roomy, tight), key=lambda r: r.key)), None,
                             _key()) > 0
    # the roomy bucket saw one request: 99 more pass on their own
    for _ in range(99):
        assert await a.admit((roomy,), None, _key()) == 0
    assert await a.admit((roomy,), None, _key()) > 0


async def test_the_concurrency_cap_counts_requests_under_way_on_every_worker(
        states: tuple[ThrottleState, ThrottleState]) -> None:
    a, b = states
    rate = Rate(_key(), 1000, 60.0)
    cap = Concurrency(_key(), 4)
    leases = [_key() for _ in range(5)]
    for n in range(4):
        assert await (a if n % 2 else b).admit((rate,), cap, leases[n]) == 0
    assert await a.admit((rate,), cap, leases[4]) == 1  # the fifth while four run
    await b.release(cap, leases[0])
    assert await a.admit((rate,), cap, leases[4]) == 0  # the place is free again
    assert await b.admit((rate,), cap, _key()) == 1


@pytest.mark.parametrize("kind", ["local", "sqlite"])
async def test_a_lease_of_a_dead_worker_expires(tmp_path: Path, kind: str) -> None:
    from graphsec.pressure.windows import LocalThrottleState
    from graphsec.storage.throttle.sqlite import SQLiteThrottleState

    state: ThrottleState = (LocalThrottleState(lease_seconds=0.2) if kind == "local"
                            else SQLiteThrottleState(tmp_path / "t", lease_seconds=0.2))
    cap, rate = Concurrency("c", 1), Rate("r", 100, 60.0)
    try:
        assert await state.admit((rate,), cap, "dead") == 0  # never released
        assert await state.admit((rate,), cap, "next") == 1
        await asyncio.sleep(0.3)
        assert await state.admit((rate,), cap, "next") == 0
    finally:
        await state.close()


async def test_an_unreachable_redis_is_a_503_not_a_pass() -> None:
    from graphsec.errors import ServiceUnavailable
    from graphsec.storage.throttle.redis import RedisThrottleState

    state = RedisThrottleState("redis://127.0.0.1:1/0")  # nothing listens on port 1
    try:
        with pytest.raises(ServiceUnavailable) as caught:
            await state.admit((Rate("k", 1, 1.0),), None, "lease")
        assert caught.value.headers["Retry-After"].isdigit()
    finally:
        await state.close()
