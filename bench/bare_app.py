"""The Python ceiling for the benchmark: a raw ASGI callable, no framework, no database.

Run by ``bench/run.py`` under granian (``granian --interface asgi --app-dir bench bare_app:app``),
one worker, on the same machine and with the same load as graphsec. For each scenario it answers
with graphsec's own response to that scenario (status and JSON document, captured by
``run.py`` just before the load starts), held as Python objects and serialized with orjson on
every request, so the body has the same size and shape as graphsec's.

The scenario is named by the ``X-Bench-Scenario`` request header, which the load generator sends
to both servers (graphsec ignores it). Payloads come from the JSON file named by
``BENCH_BARE_PAYLOADS``: ``{"<scenario>": {"status": 200, "body": {...}}, ...}``.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HEADER = b"x-bench-scenario"


def load_payloads(path: str | None) -> dict[bytes, tuple[int, Any]]:
    """Scenario name (as the header's bytes) to (status, document)."""
    if not path:
        return {}
    with open(path, "rb") as f:
        raw: dict[str, dict[str, Any]] = orjson.loads(f.read())
    return {name.encode(): (int(p["status"]), p["body"]) for name, p in raw.items()}


PAYLOADS = load_payloads(os.environ.get("BENCH_BARE_PAYLOADS"))
DEFAULT: tuple[int, Any] = (200, {"value": []})
JSON_HEADERS = [(b"content-type", b"application/json")]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    kind = scope["type"]
    if kind == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if kind != "http":
        return
    if scope["method"] != "GET":  # read the whole request body, as any real handler must
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            more = message.get("more_body", False)
    payload = DEFAULT
    for name, value in scope["headers"]:
        if name == HEADER:
            payload = PAYLOADS.get(value, DEFAULT)
            break
    status, doc = payload
    body = b"" if doc is None else orjson.dumps(doc)  # None: a 204, like graphsec's PATCH
    await send({"type": "http.response.start", "status": status,
                "headers": [*JSON_HEADERS, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
