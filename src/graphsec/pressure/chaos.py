"""Chaos: random failures and latency, for rehearsing a client's retries (``[chaos]`` in the
``--config`` file; docs/configuration.md).

Every request of a tenant with chaos on waits a latency drawn from ``latency_ms`` and then, with
probability ``rate``, fails with a status drawn from ``statuses``, answered with the Graph error
body for that status (:func:`failure`): 429 ``TooManyRequests`` (``innerError`` code and status
"429") and 503 ``serviceNotAvailable`` with an integer ``Retry-After`` of
``retry_after_seconds``; 500 ``generalException``; 502 ``BadGateway``; 504 ``GatewayTimeout``.

Repeatable: with a ``seed``, each configuration (the global one, and each tenant that overrides
it) draws from its own ``random.Random(seed)``, so the same requests in the same order get the
same outcomes. The state is per worker process: with ``--workers 2`` each worker repeats the
sequence on the requests it happens to receive. Without a seed the draws differ on every run.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from graphsec.errors import GraphError, TooManyRequests, Upstream
from graphsec.pressure.config import Behaviour, Chaos

_MESSAGES = {
    500: "An unspecified error has occurred.",
    502: "The service behind the gateway answered with an error.",
    503: "The service is temporarily unavailable. Try the request again after a delay.",
    504: "The service did not answer in time.",
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What chaos does to one request: wait ``latency_ms``, then fail with ``status`` (None:
    the request goes on)."""

    latency_ms: int
    status: int | None


def failure(status: int, retry_after_seconds: int) -> GraphError:
    """The error answered for a failure chaos drew; ``Retry-After`` on 429 and 503."""
    if status == 429:
        return TooManyRequests(retry_after_seconds)
    headers = {"Retry-After": str(retry_after_seconds)} if status == 503 else None
    message = _MESSAGES.get(status, "The request failed.")
    return Upstream(status, f"{message} (graphsec chaos)", headers=headers)


class Monkey:
    """Chaos for every tenant of one worker process; built once, :meth:`strike` per request."""

    def __init__(self, behaviour: Behaviour,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 on_strike: Callable[[int | None], None] | None = None) -> None:
        self._behaviour = behaviour
        self._sleep = sleep
        self.on_strike = on_strike
        """Told each outcome that does something: its failure status, or None for a delay
        only (the metrics)."""
        self._draws: dict[str | None, random.Random] = {}
        """One generator per configuration: None for the global one, else the tenant's."""

    def draw(self, tenant: str) -> Outcome | None:
        """The next outcome for a request of ``tenant``; None when chaos is off for it."""
        chaos = self._behaviour.of(tenant).chaos
        if not chaos.active:
            return None
        return self._outcome(chaos, self._generator(tenant, chaos))

    async def strike(self, tenant: str) -> None:
        """Wait the drawn latency, then raise the drawn failure (or return: the request goes
        on)."""
        outcome = self.draw(tenant)
        if outcome is None:
            return
        if self.on_strike is not None and (outcome.status is not None or outcome.latency_ms):
            self.on_strike(outcome.status)
        if outcome.latency_ms:
            await self._sleep(outcome.latency_ms / 1000)
        if outcome.status is not None:
            raise failure(outcome.status, self._behaviour.of(tenant).chaos.retry_after_seconds)

    def _generator(self, tenant: str, chaos: Chaos) -> random.Random:
        key = tenant if tenant in self._behaviour.tenants else None
        generator = self._draws.get(key)
        if generator is None:
            # seeded pseudo-randomness is the point: same seed, same outcomes
            generator = self._draws[key] = random.Random(chaos.seed)  # noqa: S311
        return generator

    @staticmethod
    def _outcome(chaos: Chaos, generator: random.Random) -> Outcome:
        status = None
        if chaos.rate > 0 and generator.random() < chaos.rate:
            status = generator.choice(chaos.statuses)
        low, high = chaos.latency_ms
        latency = generator.randint(low, high) if high > 0 else 0
        return Outcome(latency, status)
