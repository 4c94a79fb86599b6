"""Providers behind the security API, and the 206 Partial Content their failures cause
(``[[providers]]`` in the ``--config`` file; the contract is in docs/configuration.md,
"Providers and 206 Partial Content").

Graph's security API federates every read to the tenant's providers and merges what they
answer. A provider answering anything but 2xx or 404 (or not answering within its timeout,
which reads as 504) is reported in one element of a ``Warning`` header,
``199 - "{Vendor}/{Provider}/{Status}/{LatencyMs}"``, and the answer is 206 with the rows of the
others (security-error-codes.md, quoted in graph-contract.md §3).

Here every configured provider of the tenant takes part in every read of every entity set:
a read waits for the slowest of them (each capped at its timeout, all at once), the rows whose
``vendorInformation`` names a failing provider are left out (by the store, through
:func:`exclusion`), and each failure is reported with the latency measured. A provider
configured with 404 is left out and not reported.

Pure: no storage, no HTTP; the caller runs the read and the store filters.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from graphsec.pressure.config import Provider

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Answer:
    """A failing provider's answer to one read: its status and the latency measured."""

    provider: Provider
    status: int
    latency_ms: int

    @property
    def reported(self) -> bool:
        """Whether Graph names it in ``Warning``: every failure but 404."""
        return self.status != 404


def warning(answers: Iterable[Answer]) -> str | None:
    """The ``Warning`` value for ``answers`` (one element per reported failure, comma-separated),
    or None when none is reported (then the answer is a plain 200)."""
    elements = [f'199 - "{a.provider.vendor}/{a.provider.provider}/{a.status}/{a.latency_ms}"'
                for a in answers if a.reported]
    return ", ".join(elements) or None


def exclusion(failing: Iterable[Provider]) -> str | None:
    """A ``$filter`` true for the rows no failing provider holds: ``not
    ((vendorInformation/vendor eq 'V' and vendorInformation/provider eq 'P') or …)``. Names
    compare case-insensitively, as every ``$filter`` string comparison does; a row without
    ``vendorInformation`` is kept. None when no provider fails."""
    terms = [f"(vendorInformation/vendor eq {_quoted(p.vendor)} and "
             f"vendorInformation/provider eq {_quoted(p.provider)})" for p in failing]
    if not terms:
        return None
    return f"not ({' or '.join(terms)})"


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class FanOut:
    """One read federated to a tenant's providers (``providers`` non-empty)."""

    def __init__(self, providers: tuple[Provider, ...],
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.providers = providers
        self._sleep = sleep
        self._clock = clock
        self.failing: dict[tuple[str, str], Provider] = {
            p.key: p for p in providers if p.failure is not None}
        """The providers whose rows are left out, by (vendor, provider) case-folded."""

    def failure_of(self, vendor: object, provider: object) -> Provider | None:
        """The failing provider an entity's ``vendorInformation`` names, if any."""
        if not isinstance(vendor, str) or not isinstance(provider, str):
            return None
        return self.failing.get((vendor.casefold(), provider.casefold()))

    async def around(self, read: Awaitable[T]) -> tuple[T, tuple[Answer, ...]]:
        """Run ``read`` (the store's, already excluding the failing providers' rows) while
        the providers answer; the result once both are done, with the failing answers."""
        waiting = asyncio.ensure_future(self.answers())
        try:
            result = await read
        except BaseException:
            waiting.cancel()
            raise
        return result, await waiting

    async def answers(self) -> tuple[Answer, ...]:
        """Wait for every provider at once (each its ``latency_ms``, at most its timeout);
        the failing ones' answers, in configuration order, with the latency measured."""
        waits = [self._answer(p) for p in self.providers
                 if p.latency_ms > 0 or p.failure is not None]
        if not waits:
            return ()
        answers = await asyncio.gather(*waits)
        return tuple(a for a in answers if a is not None)

    async def _answer(self, provider: Provider) -> Answer | None:
        start = self._clock()
        wait_ms = min(provider.latency_ms, provider.provider_timeout_ms)
        if wait_ms:
            await self._sleep(wait_ms / 1000)
        failure = provider.failure
        if failure is None:
            return None
        return Answer(provider, failure[0], round((self._clock() - start) * 1000))
