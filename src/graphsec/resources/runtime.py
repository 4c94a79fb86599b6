"""The runtime behaviour (throttling, chaos, providers) changed while the server runs.

``--config`` is the starting value of each worker. ``PUT /_graphsec/behaviour`` checks a new
document exactly as the TOML file is checked (``graphsec.pressure.config.parse``), stores it in
the database (``runtime_behaviour``: the document and a version raised by every change) and
applies it to its own worker at once; every other worker, of this server or of another on the
same database, polls the version once a second and applies the document when it changed. What
applying means: the objects the request path reads (``throttle``, ``monkey``, ``behaviour`` of
the :class:`Levers`, the ASGI app) are replaced, so that a request costs nothing more than one
attribute read, as with a behaviour fixed at start. The throttle's counters stay where they were
(``storage/throttle/``): turning throttling off and on again does not refill the buckets.
A restart goes back to ``--config``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, Protocol

import orjson

from graphsec.errors import BadRequest
from graphsec.pressure.chaos import Monkey
from graphsec.pressure.config import Behaviour, ConfigError, TenantBehaviour, parse
from graphsec.pressure.throttle import Throttle
from graphsec.pressure.windows import ThrottleState
from graphsec.storage.state import StateStore

log = logging.getLogger("graphsec")

POLL_SECONDS = 1.0


class Levers(Protocol):
    """What the request path reads on every request (``graphsec.api.http.GraphApp``)."""

    throttle: Throttle | None
    monkey: Monkey | None
    behaviour: Behaviour | None


class RuntimeBehaviour:
    """The behaviour of one worker, kept in step with the database's (see the module)."""

    def __init__(self, initial: Behaviour, state: StateStore,
                 counters: Callable[[], ThrottleState], poll_seconds: float = POLL_SECONDS,
                 throttle_of: Callable[[Behaviour, ThrottleState], Throttle] = Throttle,
                 monkey_of: Callable[[Behaviour], Monkey] = Monkey) -> None:
        """``counters``: opens the throttle's state, when throttling is first on;
        ``throttle_of``/``monkey_of``: make the request path's objects for a behaviour."""
        self.current = initial
        self._throttle_of = throttle_of
        self._monkey_of = monkey_of
        self.state = state
        self.poll_seconds = poll_seconds
        self._open_counters = counters
        self._counters: ThrottleState | None = None
        self._levers: list[Levers] = []
        self._version: int | None = None
        self._task: asyncio.Task[None] | None = None

    def attach(self, levers: Levers) -> None:
        """Have ``levers`` follow the behaviour, from now on."""
        self._levers.append(levers)
        self._apply(self.current)

    async def start(self) -> None:
        """Note the stored version (changes before this start do not apply: ``--config``
        does) and start polling it."""
        self._version = await self.state.behaviour_version()
        self._task = asyncio.create_task(self._poll(), name="graphsec-behaviour")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._counters is not None:
            await self._counters.close()
            self._counters = None

    async def replace(self, document: Any) -> Behaviour:
        """Check ``document`` (the TOML's shape as JSON), store it, apply it here; 400
        naming the key for a document the TOML file could not hold either."""
        if not isinstance(document, dict):
            raise BadRequest("The behaviour must be a JSON object shaped as the --config TOML "
                             "file (docs/configuration.md).")
        try:
            behaviour = parse(document)
        except ConfigError as exc:
            raise BadRequest(f"The behaviour is not valid: {exc}.") from None
        if behaviour.default.throttling.redis != self.current.default.throttling.redis:
            raise BadRequest("The behaviour is not valid: throttling.redis cannot change while "
                             "the server runs (the counters stay where they are); restart with "
                             "it in --config.")
        version = await self.state.put_behaviour(orjson.dumps(document_of(behaviour)).decode())
        self._version = version
        self._apply(behaviour)
        return behaviour

    async def _poll(self) -> None:
        try:
            while True:
                await asyncio.sleep(self.poll_seconds)
                try:
                    await self.refresh()
                except Exception:  # a database away for a while: try again next time
                    log.exception("reading the runtime behaviour failed")
        finally:  # cancelled: by stop(), or with the event loop of an app never shut down
            await self.state.close()

    async def refresh(self) -> None:
        """Apply the stored behaviour if its version is not the one applied (what the poll
        does every ``poll_seconds``)."""
        version = await self.state.behaviour_version()
        if version != self._version:
            version, document = await self.state.behaviour()
            self._version = version
            if document is not None:
                self._apply(parse(orjson.loads(document)))

    def _apply(self, behaviour: Behaviour) -> None:
        self.current = behaviour
        throttle = None
        if behaviour.throttling_anywhere:
            if self._counters is None:
                self._counters = self._open_counters()
            throttle = self._throttle_of(behaviour, self._counters)
        monkey = self._monkey_of(behaviour) if behaviour.chaos_anywhere else None
        providers = behaviour if behaviour.providers_anywhere else None
        for levers in self._levers:
            levers.throttle, levers.monkey, levers.behaviour = throttle, monkey, providers


def document_of(behaviour: Behaviour) -> dict[str, Any]:
    """``behaviour`` in the shape of the ``--config`` TOML file, every key written out (what
    ``GET /_graphsec/behaviour`` answers and ``PUT`` takes)."""
    out = _section(behaviour.default, tenant=False)
    out["tenants"] = {tid: _section(t, tenant=True) for tid, t in behaviour.tenants.items()}
    return out


def _section(t: TenantBehaviour, tenant: bool) -> dict[str, Any]:
    throttling = asdict(t.throttling)
    if throttling["redis"] is None or tenant:
        del throttling["redis"]
    if tenant:
        del throttling["global_per_ten_seconds"]
    chaos = asdict(t.chaos)
    chaos["statuses"], chaos["latency_ms"] = list(chaos["statuses"]), list(chaos["latency_ms"])
    if chaos["seed"] is None:
        del chaos["seed"]
    providers = [{k: v for k, v in asdict(p).items() if v is not None} for p in t.providers]
    return {"throttling": throttling, "chaos": chaos, "providers": providers}
