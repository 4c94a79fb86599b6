"""The one error path: every failure a client can cause is a :class:`GraphError`.

Each class carries Graph's HTTP status and ``error.code``; the single renderer,
``graphsec.wire.error_response``, turns any of them into Graph's error body. No handler builds an
error body by hand.

Exception tree::

    GraphError                      (status, code, message, headers, details)
    ├── BadRequest                  400 BadRequest
    │   └── ResourceNotFoundForSegment  400 BadRequest "Resource not found for the segment '…'."
    ├── Unauthenticated             401 InvalidAuthenticationToken (+ WWW-Authenticate, as
    │                               Graph's: realm, authorization_uri, client_id)
    ├── Forbidden                   403 Authorization_RequestDenied
    ├── ItemNotFound                404 itemNotFound
    ├── MethodNotAllowed            405 MethodNotAllowed (+ Allow)
    ├── RequestTimeout              408 RequestTimeout (+ Connection: close): the body did not
    │                               arrive within the time allowed
    ├── Conflict                    409 Conflict
    ├── RequestEntityTooLarge       413 RequestEntityTooLarge
    ├── UnsupportedMediaType        415 UnsupportedMediaType
    ├── FailedDependency            424 failedDependency: a request of a $batch whose
    │                               dependency (dependsOn) did not succeed was not run
    ├── TooManyRequests             429 TooManyRequests (+ Retry-After, integer seconds)
    ├── ServiceUnavailable          503 serviceNotAvailable (+ Retry-After): PostgreSQL is
    │                               unreachable, or another writer holds SQLite's lock (the
    │                               SDKs' retry handlers retry 503)
    ├── GatewayTimeout              504 GatewayTimeout: a database statement ran out of its
    │                               time budget (GRAPHSEC_STATEMENT_TIMEOUT_MS)
    ├── Upstream                    any 4xx/5xx standing for something behind Graph failing:
    │                               a status chaos drew, a failing provider's on a GET by id
    │                               (graphsec.pressure); code from :func:`code_for_status`
    └── EntraError                  400/401 of graphsec's Entra ID token endpoint, rendered in
                                    Entra's shape (``error``, ``error_description`` "AADSTS…",
                                    ``error_codes``, ``timestamp``, ``trace_id``,
                                    ``correlation_id``), not Graph's

Anything else that escapes a handler is a server fault and is rendered as 500
``generalException`` without internal details.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus


@dataclass(frozen=True)
class ErrorDetail:
    """One entry of ``error.details``: what was wrong with which part of the request."""

    code: str
    message: str
    target: str


class GraphError(Exception):
    """Base of every error answered to a client."""

    status: int = 500
    code: str = "generalException"

    def __init__(
        self,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        details: Sequence[ErrorDetail] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.headers: dict[str, str] = dict(headers or {})
        self.details = tuple(details)


class BadRequest(GraphError):
    status = 400
    code = "BadRequest"


class ResourceNotFoundForSegment(BadRequest):
    """Graph's answer for a URL segment it does not know."""

    def __init__(self, segment: str) -> None:
        super().__init__(f"Resource not found for the segment '{segment}'.")


GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
"""Microsoft Graph's application id (the ``client_id`` of its 401 challenge)."""


def bearer_challenge(authority: str = "https://login.microsoftonline.com") -> str:
    """The ``WWW-Authenticate`` value of Graph's 401, as real Graph sends it, naming
    ``authority`` (graphsec's own when it serves the token endpoint) as where to sign in."""
    return (f'Bearer realm="", authorization_uri="{authority}/common/oauth2/authorize", '
            f'client_id="{GRAPH_APP_ID}"')


_DEFAULT_CHALLENGE = bearer_challenge()


class Unauthenticated(GraphError):
    """401; ``challenge`` is the ``WWW-Authenticate`` value (:func:`bearer_challenge`)."""

    status = 401
    code = "InvalidAuthenticationToken"

    def __init__(self, message: str, challenge: str = _DEFAULT_CHALLENGE) -> None:
        super().__init__(message, headers={"WWW-Authenticate": challenge})


class Forbidden(GraphError):
    status = 403
    code = "Authorization_RequestDenied"


class ItemNotFound(GraphError):
    status = 404
    code = "itemNotFound"


class MethodNotAllowed(GraphError):
    status = 405
    code = "MethodNotAllowed"

    def __init__(self, method: str, allowed: Sequence[str]) -> None:
        super().__init__(
            f"The HTTP method '{method}' is not allowed on this resource; "
            f"allowed: {', '.join(allowed)}.",
            headers={"Allow": ", ".join(allowed)},
        )


class RequestTimeout(GraphError):
    """The request body did not arrive in time. The connection is closed after the answer: the
    rest of the body may still be on its way, so the connection cannot carry another request."""

    status = 408
    code = "RequestTimeout"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"Connection": "close"})


class Conflict(GraphError):
    status = 409
    code = "Conflict"


class RequestEntityTooLarge(GraphError):
    status = 413
    code = "RequestEntityTooLarge"


class UnsupportedMediaType(GraphError):
    status = 415
    code = "UnsupportedMediaType"


class FailedDependency(GraphError):
    status = 424
    code = "failedDependency"


class TooManyRequests(GraphError):
    status = 429
    code = "TooManyRequests"

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(
            "Please retry again later.", headers={"Retry-After": str(max(1, retry_after_seconds))}
        )


class ServiceUnavailable(GraphError):
    status = 503
    code = "serviceNotAvailable"

    def __init__(self, message: str, retry_after_seconds: int = 5) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after_seconds))})


class GatewayTimeout(GraphError):
    """A statement ran longer than the time budget and was stopped (Graph answers 504 when a
    provider does not answer in time). Nothing it started is left running, and a write it was
    part of is rolled back. The message says to narrow the query: sent again unchanged (the
    SDKs' retry handlers retry 504), it would run out of time again."""

    status = 504
    code = "GatewayTimeout"


class EntraError(GraphError):
    """An error of the token endpoint, answered as Entra ID answers it: ``error`` (the OAuth
    2.0 code, e.g. ``invalid_client``), ``error_description`` starting with ``AADSTS{n}: ``
    and ``error_codes`` ``[n]``; ``wire.error_response`` renders it in that shape. The
    client libraries show the description: azure-identity raises
    ``ClientAuthenticationError`` with it, MSAL returns the body as a dict."""

    def __init__(self, status: int, error: str, aadsts: int, description: str) -> None:
        super().__init__(f"AADSTS{aadsts}: {description}")
        self.status = status
        self.code = error
        self.aadsts = aadsts


_STATUS_CODES = {
    400: BadRequest.code, 401: Unauthenticated.code, 403: Forbidden.code, 404: ItemNotFound.code,
    405: MethodNotAllowed.code, 408: RequestTimeout.code, 409: Conflict.code,
    413: RequestEntityTooLarge.code, 415: UnsupportedMediaType.code,
    424: FailedDependency.code, 429: TooManyRequests.code, 500: GraphError.code,
    502: "BadGateway", 503: ServiceUnavailable.code, 504: GatewayTimeout.code,
}


def code_for_status(status: int) -> str:
    """The ``error.code`` graphsec answers ``status`` with: the code of the class above that
    answers it (Graph's ``generalException`` for 500, ``serviceNotAvailable`` for 503), else,
    where Graph documents none, the status's reason phrase in Pascal case as Graph's
    ``BadRequest`` and ``TooManyRequests`` are (502 ``BadGateway``, 507
    ``InsufficientStorage``); ``generalException`` for a status without a phrase."""
    code = _STATUS_CODES.get(status)
    if code is not None:
        return code
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return GraphError.code
    return "".join(ch for ch in phrase.title() if ch.isalnum())


class Upstream(GraphError):
    """An error that stands for something behind Graph failing, with any error status: a
    failure chaos drew, or a failing provider's status on a GET by id (``graphsec.pressure``).
    The body is the same as the class answering that status elsewhere would give."""

    def __init__(self, status: int, message: str, *,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message, headers=headers)
        self.status = status
        self.code = code_for_status(status)
