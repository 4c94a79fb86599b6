"""Throttling with Graph's documented limits for ``/security`` (docs/configuration.md).

Which limits a request counts against (:func:`limits_for`), per application (the token's
``appid``/``azp``) and tenant:

- every request: the global limit, per application across tenants (130,000 per 10 s);
- secureScores and userSecurityProfiles (``/security`` detections): 150 per minute, one bucket;
- secureScores and secureScoreControlProfiles together: 10,000 per 10 minutes, and at most 4
  requests under way at once.

Each rate limit is a window that opens at the first request and lasts its period: the limit's
worth of requests pass, the next one before the window closes is refused (so the 151st request
in a minute is a 429, as Graph documents the limit). The first limit reached throttles: the
request is answered 429 with an integer ``Retry-After`` (≥ 1 s: the time until that window
closes) and consumes nothing; a client that retries before then is refused again, for the
window is still full. The next request after the window closed opens a new one. (A token
bucket refills while a burst is being sent, and lets a 151st request through within the
minute; measured on a real server, tests/system/test_throttling_server.py.) A request over
the concurrency cap gets ``Retry-After: 1``.

The decision runs where every worker and every instance sees the same state
(``windows.ThrottleState``, implemented in ``storage/throttle/``): a per-process counter would let
``--workers N`` times the limit through.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from graphsec.errors import TooManyRequests
from graphsec.pressure.config import Behaviour, Throttling
from graphsec.pressure.windows import Concurrency, Rate, ThrottleState

DETECTIONS = frozenset({"secureScores", "userSecurityProfiles"})
"""Entity sets counted by the 150-per-minute ``/security`` limit."""
SCORES_AND_PROFILES = frozenset({"secureScores", "secureScoreControlProfiles"})
"""Entity sets counted together by the 10,000-per-10-minutes and the concurrency limits."""

def limits_for(throttling: Throttling, application: str, tenant: str,
               entity_set: str) -> tuple[tuple[Rate, ...], Concurrency | None]:
    """The rate buckets and the concurrency cap a request on ``entity_set`` counts against
    (the keys in the order they are locked: sorted, so that no two callers deadlock)."""
    app = application.replace("|", "/")
    rates = [Rate(f"g|{app}", throttling.global_per_ten_seconds, 10.0)]
    if entity_set in DETECTIONS:
        rates.append(Rate(f"m|{app}|{tenant}", throttling.per_minute, 60.0))
    concurrency = None
    if entity_set in SCORES_AND_PROFILES:
        rates.append(Rate(f"t|{app}|{tenant}", throttling.per_ten_minutes, 600.0))
        concurrency = Concurrency(f"c|{app}|{tenant}", throttling.concurrent)
    return tuple(sorted(rates, key=lambda r: r.key)), concurrency


class Throttle:
    """The check every Graph request passes when throttling is on for its tenant."""

    def __init__(self, behaviour: Behaviour, state: ThrottleState,
                 on_refused: Callable[[str], None] | None = None) -> None:
        self._behaviour = behaviour
        self._state = state
        self.on_refused = on_refused
        """Told the entity set of each request refused with 429 (the metrics)."""
        self._limits: dict[tuple[str, str, str], tuple[tuple[Rate, ...], Concurrency | None]] = {}
        """``limits_for`` by (application, tenant, entity set): built once each (bounded)."""
        self._lease_prefix = f"{uuid.uuid4().hex[:16]}-"
        self._leases = itertools.count()

    @asynccontextmanager
    async def admit(self, application: str, tenant: str,
                    entity_set: str) -> AsyncIterator[None]:
        """Raises 429 (:class:`TooManyRequests`) for a request over a limit; otherwise runs
        the body, holding a place under the concurrency cap until it ends."""
        throttling = self._behaviour.of(tenant).throttling
        if not throttling.enabled:
            yield
            return
        key = (application, tenant, entity_set)
        limits = self._limits.get(key)
        if limits is None:
            if len(self._limits) >= 65_536:
                self._limits.clear()
            limits = self._limits[key] = limits_for(throttling, application, tenant, entity_set)
        rates, concurrency = limits
        lease = f"{self._lease_prefix}{next(self._leases)}"  # unique across workers too
        wait = await self._state.admit(rates, concurrency, lease)
        if wait:
            if self.on_refused is not None:
                self.on_refused(entity_set)
            raise TooManyRequests(wait)
        try:
            yield
        finally:
            if concurrency is not None:
                await self._state.release(concurrency, lease)

    async def close(self) -> None:
        await self._state.close()
