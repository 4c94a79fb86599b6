"""``GET /readyz`` and ``GET /metrics``: answered before the Host check, like ``/healthz``
(load balancers and scrapers address servers by IP).

``/readyz``: 200 ``{"status":"ready"}`` when the database answers and its schema is the newest
migration this graphsec knows, else 503 ``{"status":"unavailable","reason":"…"}`` with a
one-line reason; the check is bounded (:data:`READY_SECONDS`), so a probe never hangs on a
database that does not answer. ``/healthz`` stays the liveness check: it does not touch the
database.

``/metrics``: the Prometheus text format (``graphsec.observability.metrics``), for the holder of
the operator key (``Authorization: Bearer <key>``, ``graphsec.auth.operator``) unless the
server runs with ``--metrics-public``. No credential, or a wrong one: 401; a tenant's valid
token: 403 (it never opens operator paths). With metrics off: 404.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

import orjson

from graphsec.auth.operator import is_operator
from graphsec.auth.tokens import TokenVerifier
from graphsec.errors import Forbidden, GraphError, ItemNotFound, MethodNotAllowed, Unauthenticated
from graphsec.wire import Response, json_response

if TYPE_CHECKING:  # prometheus-client is imported where metrics are on (multiprocess.py)
    from graphsec.observability.metrics import Metrics

READY_SECONDS = 2.0
"""How long ``/readyz`` waits for the database before it answers 503."""
PATHS = frozenset({"/readyz", "/metrics"})
"""The paths :class:`Probes` answers (lower case, without a trailing ``/``)."""

Readiness = Callable[[float], Awaitable["str | None"]]
"""The store's ``readiness(seconds)``: None when ready, else why not."""


class Probes:
    """Answers :data:`PATHS`. ``operator_key`` None: ``/metrics`` needs no credential."""

    def __init__(self, readiness: Readiness, verifier: TokenVerifier,
                 metrics: Metrics | None = None, operator_key: str | None = None,
                 seconds: float = READY_SECONDS) -> None:
        self.readiness = readiness
        self.verifier = verifier
        self.metrics = metrics
        self.operator_key = operator_key
        self.seconds = seconds

    async def answer(self, path: str, method: str, headers: Mapping[str, str]) -> Response:
        """The answer for ``path``, one of :data:`PATHS`."""
        if method not in ("GET", "HEAD"):
            raise MethodNotAllowed(method, ("GET", "HEAD"))
        if path == "/readyz":
            return await self.ready()
        return self.scrape(headers.get("authorization"))

    async def ready(self) -> Response:
        try:  # the store bounds its own check; this bounds a store that would not
            async with asyncio.timeout(self.seconds + 0.5):
                reason = await self.readiness(self.seconds)
        except TimeoutError:
            reason = f"the database did not answer within {self.seconds:g} s"
        if reason is None:
            return json_response(200, b'{"status":"ready"}')
        return json_response(503, orjson.dumps({"status": "unavailable", "reason": reason}))

    def scrape(self, authorization: str | None) -> Response:
        if self.metrics is None:
            raise ItemNotFound("Metrics are off on this server; start it with --metrics "
                               "(GRAPHSEC_METRICS=1).")
        if self.operator_key is not None and not is_operator(authorization, self.operator_key):
            self._refuse(authorization)
        return Response(200, self.metrics.render(), self.metrics.content_type)

    def _refuse(self, authorization: str | None) -> None:
        """401 for no credential or a wrong one, 403 for a tenant's valid token."""
        try:
            self.verifier.verify_header(authorization)
        except GraphError:
            raise Unauthenticated("/metrics needs the operator key: 'Authorization: Bearer "
                                  "<GRAPHSEC_HOME/operator.key>'.") from None
        raise Forbidden("A tenant's token does not open /metrics; send the operator key "
                        "(GRAPHSEC_HOME/operator.key).")
