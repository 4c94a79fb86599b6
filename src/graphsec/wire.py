"""The wire format: the one JSON renderer and the one error renderer (a leaf module).

Stored documents are canonical JSON already; entity and list bodies are spliced together from
them rather than parsed and encoded again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from graphsec.errors import EntraError, GraphError

PLAIN_JSON = "application/json; charset=utf-8"
"""What Entra ID's endpoints answer with (no OData parameters)."""
GRAPH_JSON = (
    "application/json;odata.metadata=minimal;odata.streaming=true;"
    "IEEE754Compatible=false;charset=utf-8"
)


@dataclass
class Response:
    """What a handler answers: status, body and headers (the HTTP layer adds the common ones)."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(kw_only=True)
class StreamingResponse(Response):
    """A response whose body is produced as it is sent (an export of any size): ``chunks`` is
    iterated once by the HTTP layer, which sends no Content-Length for it; ``body`` is unused."""

    chunks: AsyncIterator[bytes]


def json_response(status: int, body: bytes, headers: dict[str, str] | None = None) -> Response:
    return Response(status, body, GRAPH_JSON, headers or {})


def empty(status: int = 204, headers: dict[str, str] | None = None) -> Response:
    return Response(status, b"", None, headers or {})


def text(status: int, body: str) -> Response:
    return Response(status, body.encode(), "text/plain;charset=utf-8")


def entity_body(context: str, doc: bytes) -> bytes:
    """``{"@odata.context": …, <the entity's properties>}`` without re-encoding the entity."""
    head = b'{"@odata.context":' + orjson.dumps(context)
    return head + b"}" if doc == b"{}" else head + b"," + doc[1:]


def collection_body(
    context: str, docs: list[bytes], next_link: str | None, count: int | None
) -> bytes:
    """``{"@odata.context", "@odata.count"?, "value": [...], "@odata.nextLink"?}``, spliced."""
    parts = [b'{"@odata.context":', orjson.dumps(context)]
    if count is not None:
        parts += [b',"@odata.count":', str(count).encode()]
    parts.append(b',"value":[')
    for i, doc in enumerate(docs):  # one flat join: a nested one copies ~0.5 MB pages twice
        if i:
            parts.append(b",")
        parts.append(doc)
    parts.append(b"]")
    if next_link is not None:
        parts += [b',"@odata.nextLink":', orjson.dumps(next_link)]
    parts.append(b"}")
    return b"".join(parts)


def error_response(error: GraphError, request_id: str, client_request_id: str) -> Response:
    """Graph's error body: ``{"error": {"code", "message", "innerError": {…}, "details"?}}``;
    for an :class:`EntraError`, Entra ID's (:func:`entra_error_body`)."""
    if isinstance(error, EntraError):
        return Response(error.status, entra_error_body(error, request_id, client_request_id),
                        PLAIN_JSON, dict(error.headers))
    inner = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id,
        "client-request-id": client_request_id,
    }
    if error.status == 429:  # Graph's throttling body names the status inside too
        inner = {"code": "429", "message": "Please retry after", **inner, "status": "429"}
    body: dict[str, object] = {"code": error.code, "message": error.message, "innerError": inner}
    if error.details:
        body["details"] = [
            {"code": d.code, "message": d.message, "target": d.target} for d in error.details
        ]
    return json_response(error.status, orjson.dumps({"error": body}), dict(error.headers))


def entra_error_body(error: EntraError, trace_id: str, correlation_id: str) -> bytes:
    """Entra ID's error body: ``error``, ``error_description`` (``AADSTS…: …`` followed, as
    Entra's, by the trace and correlation ids and the time), ``error_codes``, ``timestamp``,
    ``trace_id``, ``correlation_id`` and ``error_uri``."""
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
    description = (f"{error.message} Trace ID: {trace_id} Correlation ID: {correlation_id} "
                   f"Timestamp: {now.strftime('%Y-%m-%d %H:%M:%S')}Z")
    return orjson.dumps({
        "error": error.code,
        "error_description": description,
        "error_codes": [error.aadsts],
        "timestamp": stamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"https://login.microsoftonline.com/error?code={error.aadsts}",
    })
