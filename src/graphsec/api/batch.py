"""JSON batching: ``POST /{version}/$batch``, as Graph answers it (docs/batching.md).

The envelope is checked whole first (:func:`parse`): anything wrong with the batch itself is a
400 for the batch, before any of its requests runs. Then each request goes through the same
dispatcher as a request of its own (:func:`run`, given that dispatcher as ``serve``) and gets its
own answer inside a ``200``: its status, headers and body (:func:`render`).

Scheduling follows Graph's rule that a batch is either fully parallel (no request names a
``dependsOn``) or fully sequential (every request after the first names at least one earlier
one). Parallel requests run concurrently; sequential ones one after the other, in order. A
request whose dependency did not succeed (a status outside 2xx) is not run: it answers 424
``failedDependency``. The Python SDK writes ``depends_on`` (snake case): Graph ignores that key,
and so does graphsec.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import orjson

from graphsec.errors import (
    BadRequest,
    FailedDependency,
    GatewayTimeout,
    GraphError,
    UnsupportedMediaType,
)
from graphsec.wire import GRAPH_JSON, Response

MAX_REQUESTS = 20
"""Graph's limit: "JSON batch requests are currently limited to 20 individual requests"."""

NO_BODY: Any = object()
"""The body of a request that has none (``None`` is the JSON ``null``)."""


@dataclass(slots=True)
class Item:
    """One request of a batch, as checked by :func:`parse`."""

    id: str
    method: str
    path: str
    """The path relative to the version root, without a leading ``/`` (still percent-encoded)."""
    query: str
    headers: dict[str, str]
    """Header names in lower case."""
    body: Any
    depends_on: tuple[int, ...]
    """The positions of the (earlier) requests this one waits for."""

    def json_body(self) -> Any:
        """The body as JSON, for a POST or PATCH: the object sent, or a JSON text sent as a
        base64 string (what the Python SDK does with a body that is not a dict)."""
        if self.body is NO_BODY:
            raise BadRequest(f"Request '{self.id}' has no body; send the entity as a JSON "
                             "object in its 'body'.")
        content_type = self.headers.get("content-type", "")
        if content_type.split(";", 1)[0].strip().lower() != "application/json":
            raise UnsupportedMediaType(f"The Content-Type of request '{self.id}' is "
                                       f"'{content_type}'; send the body as application/json.")
        if not isinstance(self.body, str):
            return self.body
        try:
            text = base64.b64decode(self.body + "=" * (-len(self.body) % 4),
                                    altchars=b"-_" if "-" in self.body or "_" in self.body
                                    else None, validate=True)
            return orjson.loads(text)
        except (binascii.Error, ValueError):
            raise BadRequest(f"The body of request '{self.id}' is a string that is not base64 "
                             "of a JSON text; send the entity as a JSON object.") from None


def parse(payload: Any) -> tuple[list[Item], bool]:
    """The requests of a batch and whether it is sequential; 400 for a malformed batch."""
    if not isinstance(payload, dict) or "requests" not in payload:
        raise BadRequest("The batch must be a JSON object with a 'requests' array.")
    raw = payload["requests"]
    if not isinstance(raw, list):
        raise BadRequest("The batch's 'requests' must be an array of requests.")
    if not raw:
        raise BadRequest("The batch holds no requests; send 1 to 20.")
    if len(raw) > MAX_REQUESTS:
        raise BadRequest(f"The batch holds {len(raw)} requests, over the limit of "
                         f"{MAX_REQUESTS}; split it into batches of at most {MAX_REQUESTS}.")
    positions: dict[str, int] = {}
    items: list[Item] = []
    for n, entry in enumerate(raw):
        item = _item(n, entry, positions)
        positions[item.id.casefold()] = n
        items.append(item)
    waiting = [bool(item.depends_on) for item in items[1:]]
    if any(waiting) and not all(waiting):
        raise BadRequest("Batch should be either fully sequential or fully parallel: either no "
                         "request has 'dependsOn', or every request after the first depends on "
                         "an earlier one.")
    return items, any(waiting)


def _item(n: int, entry: Any, positions: dict[str, int]) -> Item:
    where = f"Request {n + 1} of the batch"
    if not isinstance(entry, dict):
        raise BadRequest(f"{where} is not a JSON object.")
    for name in ("id", "method", "url"):
        value = entry.get(name)
        if not isinstance(value, str) or not value.strip():
            shown = "is missing" if value is None else "must be a non-empty string"
            raise BadRequest(f"{where}: '{name}' {shown}.")
    ident: str = entry["id"]
    where = f"Request '{ident}'"
    if ident.casefold() in positions:
        raise BadRequest(f"The request id '{ident}' appears more than once in the batch; ids "
                         "must be unique (compared without case).")
    headers = _headers(where, entry.get("headers"))
    body = entry.get("body", NO_BODY)
    if body is not NO_BODY and "content-type" not in headers:
        raise BadRequest(f"{where} has a body but no Content-Type header; name the body's "
                         "media type in its 'headers'.")
    url: str = entry["url"].strip()
    path, _, query = url.partition("?")
    path = path.lstrip("/")
    if unquote(path.rstrip("/")).casefold() == "$batch":
        raise BadRequest(f"{where} is itself a $batch; batches do not nest.")
    return Item(ident, entry["method"].strip().upper(), path, query, headers, body,
                _depends_on(ident, entry.get("dependsOn"), positions))


def _headers(where: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"{where}: 'headers' must be a JSON object of header names and values.")
    out: dict[str, str] = {}
    for name, v in value.items():
        if not isinstance(v, str):
            raise BadRequest(f"{where}: the value of header '{name}' must be a string.")
        out[name.lower()] = v
    return out


def _depends_on(ident: str, value: Any, positions: dict[str, int]) -> tuple[int, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(d, str) for d in value):
        raise BadRequest(f"Request '{ident}': 'dependsOn' must be an array of request ids.")
    out: list[int] = []
    for dependency in value:
        position = positions.get(dependency.casefold())
        if position is None:
            raise BadRequest(f"Invalid dependency for request Id '{ident}': "
                             f"'{dependency}' is not the id of an earlier request in the batch.")
        out.append(position)
    return tuple(out)


Serve = Callable[[int], Awaitable[Response]]
"""Runs the request at a position through the dispatcher and answers it (errors rendered)."""
Refuse = Callable[[int, GraphError], Response]
"""Renders an error as the answer of the request at a position."""


async def run(items: list[Item], sequential: bool, serve: Serve, refuse: Refuse,
              deadline: float, stopped: Callable[[], bool]) -> list[Response]:
    """Every request's answer, in request order. None is started after the loop time
    ``deadline`` or once ``stopped()`` (the client left): those answer 504."""
    loop = asyncio.get_running_loop()
    answers: list[Response | None] = [None] * len(items)

    async def one(n: int) -> None:
        item = items[n]
        for d in item.depends_on:
            status = answers[d].status if answers[d] is not None else 0  # type: ignore[union-attr]
            if not 200 <= status < 300:
                answers[n] = refuse(n, FailedDependency(
                    f"Request '{item.id}' was not run: request '{items[d].id}', which it "
                    f"depends on, answered {status}."))
                return
        if loop.time() >= deadline or stopped():
            answers[n] = refuse(n, GatewayTimeout(
                f"Request '{item.id}' was not started: the batch ran out of its time "
                "(GRAPHSEC_BATCH_TIMEOUT_SECONDS); send it again in a batch of its own."))
            return
        answers[n] = await serve(n)

    if sequential:
        for n in range(len(items)):
            await one(n)
    elif len(items) == 1:
        await one(0)
    else:
        await asyncio.gather(*(one(n) for n in range(len(items))))
    return [a for a in answers if a is not None]


def render(items: list[Item], answers: list[Response], ids: list[tuple[str, str]]) -> bytes:
    """``{"responses": [{"id", "status", "headers", "body"?}, …]}`` in request order. JSON bodies
    are spliced in as they are (never parsed again), ``text/*`` bodies are strings, anything
    else is base64url; a 204 (or any empty answer) has no body."""
    out = []
    for item, answer, (request_id, client_request_id) in zip(items, answers, ids, strict=True):
        headers: dict[str, str] = {}
        media = answer.content_type
        if media is not None:
            headers["Content-Type"] = media
            if media == GRAPH_JSON:
                headers["OData-Version"] = "4.0"
        headers["request-id"] = request_id
        headers["client-request-id"] = client_request_id
        headers.update(answer.headers)
        entry: dict[str, Any] = {"id": item.id, "status": answer.status, "headers": headers}
        if answer.body:
            kind = (media or "").split(";", 1)[0].strip().lower()
            if kind == "application/json" or kind.endswith("+json"):
                entry["body"] = orjson.Fragment(answer.body)
            elif kind.startswith("text/"):
                entry["body"] = answer.body.decode("utf-8", "replace")
            else:
                entry["body"] = base64.urlsafe_b64encode(answer.body).decode().rstrip("=")
        out.append(entry)
    return orjson.dumps({"responses": out})
