"""The throttle's windows and the state they are kept in: what ``storage/throttle/`` needs of
the throttle, and nothing else (``throttle.py`` decides which windows a request counts in)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

LEASE_SECONDS = 300.0
"""How long a request's place under the concurrency cap lasts if its worker dies before it
gives it back (longer than any request may run)."""


@dataclass(frozen=True, slots=True)
class Rate:
    """A rate limit: ``limit`` requests in a window of ``period`` seconds, under ``key``."""

    key: str
    limit: int
    period: float


@dataclass(frozen=True, slots=True)
class Concurrency:
    """At most ``limit`` requests under ``key`` at once."""

    key: str
    limit: int


class ThrottleState(Protocol):
    """The shared state the decision runs on (``storage/throttle/``)."""

    async def admit(self, rates: tuple[Rate, ...], concurrency: Concurrency | None,
                    lease: str) -> int:
        """0 when the request may run (its rates consumed, its lease taken); else the whole
        seconds ≥ 1 it must wait (nothing consumed). Atomic against every other caller."""

    async def release(self, concurrency: Concurrency, lease: str) -> None:
        """Gives back the place ``lease`` took under ``concurrency``."""

    async def close(self) -> None:
        """Releases connections."""


def decide(rates: tuple[Rate, ...], state: dict[str, tuple[float, int]],
           now: float) -> tuple[int, dict[str, tuple[float, int]]]:
    """The decision over ``state`` (key → (when its window opened, requests in it)):
    ``(0, the new state of every window)`` when each has room, else ``(seconds until the
    last full one closes, {})``: a refused request changes nothing. For the stores that keep
    the state in rows (``storage/throttle/sqlite.py``; PostgreSQL runs the same steps in
    SQL)."""
    wait = 0
    admitted: dict[str, tuple[float, int]] = {}
    for rate in rates:
        start, count = state.get(rate.key, (0.0, 0))
        if now >= start + rate.period:  # closed: the next request opens a new one
            start, count = now, 0
        if count >= rate.limit:
            wait = max(wait, _whole(start + rate.period - now))
        else:
            admitted[rate.key] = (start, count + 1)
    if wait:
        return wait, {}
    return 0, admitted


def _whole(seconds: float) -> int:
    """Whole seconds, rounded up, at least 1 (kiota ignores fractional ``Retry-After``)."""
    whole = int(seconds)
    return max(1, whole + (whole < seconds))


class LocalThrottleState:
    """The state in this process's memory: exact when this process is the only one serving
    (``graphsec serve --workers 1`` on SQLite), and a few microseconds a request where a
    shared store costs a transaction. Atomic without a lock: nothing in it awaits."""

    PURGE_EVERY = 4096

    def __init__(self, lease_seconds: float = LEASE_SECONDS) -> None:
        self.lease_seconds = lease_seconds
        self._windows: dict[str, tuple[float, int]] = {}
        self._leases: dict[str, dict[str, float]] = {}
        self._admitted = 0

    async def admit(self, rates: tuple[Rate, ...], concurrency: Concurrency | None,
                    lease: str) -> int:
        now = time.time()
        wait, changes = decide(rates, self._windows, now)
        if wait:
            return wait
        if concurrency is not None:
            held = self._leases.setdefault(concurrency.key, {})
            if len(held) >= concurrency.limit:
                for expired in [k for k, until in held.items() if until < now]:
                    del held[expired]
                if len(held) >= concurrency.limit:
                    return 1
            held[lease] = now + self.lease_seconds
        self._windows.update(changes)
        self._admitted += 1
        if self._admitted % self.PURGE_EVERY == 0:  # a closed window is the same as none
            self._windows = {k: w for k, w in self._windows.items() if w[0] >= now - 600}
        return 0

    async def release(self, concurrency: Concurrency, lease: str) -> None:
        held = self._leases.get(concurrency.key)
        if held is not None:
            held.pop(lease, None)
            if not held:
                del self._leases[concurrency.key]

    async def close(self) -> None:
        self._windows.clear()
        self._leases.clear()
