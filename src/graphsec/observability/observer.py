"""What the HTTP layer reports once per request, to the metrics and the access log.

``GraphApp`` holds an :class:`Observer` only when metrics or the access log are on; otherwise
None, and a request costs one ``is None`` check.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote

from graphsec.auth.principal import Principal
from graphsec.observability.access_log import AccessLog

if TYPE_CHECKING:  # prometheus-client is imported where metrics are on (multiprocess.py)
    from graphsec.observability.metrics import Metrics

NONE = "none"
"""The entity set label of a path that addresses none (health, metrics, errors, admin)."""
BATCH = "$batch"


class Observed(Protocol):
    """The parts of a request the observer reads (``graphsec.api.http.Request``)."""

    method: str
    raw_path: str
    request_id: str
    client_request_id: str
    principal: Principal | None
    entity_set: str | None


class Observer:
    """Hands each answered request to ``metrics`` and ``access_log`` (either may be None)."""

    def __init__(self, metrics: Metrics | None, access_log: AccessLog | None,
                 entity_sets: Iterable[str]) -> None:
        self.metrics = metrics
        self.access_log = access_log
        self._names = {name.lower(): name for name in entity_sets}

    def done(self, request: Observed, status: int, seconds: float) -> None:
        """Record a request answered with ``status`` after ``seconds``."""
        entity_set = request.entity_set or self.entity_set(request.raw_path)
        if self.metrics is not None:
            self.metrics.request(entity_set, request.method, status, seconds)
        if self.access_log is not None:
            principal = request.principal
            self.access_log.write({
                "request-id": request.request_id,
                "client-request-id": request.client_request_id,
                "tenant": principal.tenant if principal else None,
                "application": principal.application if principal else None,
                "method": request.method,
                "route": request.raw_path,
                "entity-set": entity_set,
                "status": status,
                "duration_ms": round(seconds * 1000, 3),
            })

    def entity_set(self, path: str) -> str:
        """The entity set a Graph path addresses (canonical spelling), ``$batch``, or
        ``none``: ``/v1.0/security/secureScores('x')`` → ``secureScores``."""
        segments = path.split("/", 4)
        if len(segments) == 3 and unquote(segments[2]).lower() == BATCH:
            return BATCH
        if len(segments) < 4 or segments[2].lower() != "security":
            return NONE
        name = segments[3].split("(", 1)[0]
        return self._names.get(name.lower(), NONE)
