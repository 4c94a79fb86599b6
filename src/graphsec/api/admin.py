"""The admin API: ``/_graphsec/…``, outside Graph's surface, for operators and test suites.

Every request carries the operator key (``GRAPHSEC_HOME/operator.key``, ``graphsec
operator-key``) as ``Authorization: Bearer <key>``; anything else is 401, and a tenant's token,
valid as it may be, 403. Paths are case-sensitive; docs/admin.md lists them. What they do is
``graphsec.resources.admin``'s; this module reads HTTP and answers it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson

from graphsec.api.http import Request
from graphsec.auth.operator import OPERATOR_KEY_FILE, is_operator
from graphsec.auth.tokens import TokenVerifier
from graphsec.errors import (
    BadRequest,
    Forbidden,
    GraphError,
    ItemNotFound,
    MethodNotAllowed,
    RequestTimeout,
    Unauthenticated,
    UnsupportedMediaType,
)
from graphsec.resources.admin import Admin, tenant_of
from graphsec.wire import PLAIN_JSON, Response, StreamingResponse, empty

PREFIX = "/_graphsec"
NDJSON = "application/x-ndjson"
MAX_JSON_BYTES = 1024 * 1024


def _json(body: Any, status: int = 200) -> Response:
    return Response(status, orjson.dumps(body), PLAIN_JSON, {})


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class AdminEndpoints:
    """A door of ``GraphApp`` (``api.http.Door``): answers ``/_graphsec`` and below, None for
    any other path."""

    def __init__(self, admin: Admin, operator_key: str, verifier: TokenVerifier,
                 body_timeout_seconds: float) -> None:
        self.admin = admin
        self.key = operator_key
        self.verifier = verifier
        self.body_timeout_seconds = body_timeout_seconds
        self.routes: dict[str, dict[str, Handler]] = {
            "tenants": {"GET": self.tenants},
            "reset": {"POST": self.reset},
            "seed": {"POST": self.seed},
            "export": {"GET": self.export},
            "import": {"POST": self.import_ndjson},
            "behaviour": {"GET": self.behaviour, "PUT": self.replace_behaviour},
            "apps": {"GET": self.apps, "POST": self.create_app},
            "tokens": {"POST": self.token},
        }

    async def __call__(self, request: Request, base: str) -> Response | None:
        path = request.raw_path
        if path != PREFIX and not path.startswith(PREFIX + "/"):
            return None
        self.authorize(request.headers.get("authorization"))
        segments = path[len(PREFIX) + 1:].split("/")
        if len(segments) == 3 and segments[0] == "apps":
            if request.method != "DELETE":
                raise MethodNotAllowed(request.method, ["DELETE"])
            return await self.delete_app(unquote(segments[1]), unquote(segments[2]))
        methods = self.routes.get(segments[0]) if len(segments) == 1 else None
        if methods is None:
            raise ItemNotFound(f"No admin resource at '{path}'; docs/admin.md lists them.")
        handler = methods.get(request.method)
        if handler is None:
            raise MethodNotAllowed(request.method, list(methods))
        return await handler(request)

    def authorize(self, authorization: str | None) -> None:
        """Nothing for the operator key; 403 for a tenant's valid token; 401 otherwise."""
        if is_operator(authorization, self.key):
            return
        try:
            self.verifier.verify_header(authorization)
        except GraphError:
            raise Unauthenticated(
                "The admin API needs the operator key as 'Authorization: Bearer <key>'; it is "
                f"in GRAPHSEC_HOME/{OPERATOR_KEY_FILE} (graphsec operator-key prints it)."
            ) from None
        raise Forbidden("A tenant token cannot use the admin API; use the operator key in "
                        f"GRAPHSEC_HOME/{OPERATOR_KEY_FILE}.")

    async def tenants(self, request: Request) -> Response:
        return _json(await self.admin.tenants())

    async def reset(self, request: Request) -> Response:
        query = _query(request, ("tenant", "apps"))
        with_apps = query.get("apps", "false").lower()
        if with_apps not in ("true", "false"):
            raise BadRequest("'apps' must be true or false.")
        return _json(await self.admin.reset(_tenant(query), with_apps == "true"))

    async def seed(self, request: Request) -> Response:
        return _json(await self.admin.seed(await self._object(request, empty_ok=True)))

    async def export(self, request: Request) -> Response:
        tenant = _tenant(_query(request, ("tenant",)))
        return StreamingResponse(200, content_type=NDJSON, chunks=self.admin.export(tenant))

    async def import_ndjson(self, request: Request) -> Response:
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media != NDJSON:
            raise UnsupportedMediaType(f"Send the export as {NDJSON} (one JSON object a line).")
        return _json(await self.admin.import_ndjson(
            _body_chunks(request, self.body_timeout_seconds)))

    async def behaviour(self, request: Request) -> Response:
        return _json(self.admin.behaviour())

    async def replace_behaviour(self, request: Request) -> Response:
        return _json(await self.admin.replace_behaviour(await self._object(request)))

    async def apps(self, request: Request) -> Response:
        return _json(await self.admin.apps(_tenant(_query(request, ("tenant",)))))

    async def create_app(self, request: Request) -> Response:
        return _json(await self.admin.create_app(await self._object(request)), 201)

    async def delete_app(self, tenant: str, client_id: str) -> Response:
        if not await self.admin.delete_app(tenant_of(tenant), client_id):
            raise ItemNotFound(f"No app '{client_id}' in tenant '{tenant}'.")
        return empty(204)

    async def token(self, request: Request) -> Response:
        return _json(self.admin.token(await self._object(request)))

    async def _object(self, request: Request, empty_ok: bool = False) -> dict[str, Any]:
        request.bound_body_reads(self.body_timeout_seconds)
        if empty_ok and not request.headers.get("content-type"):
            if (await request.body(MAX_JSON_BYTES)).strip():
                raise UnsupportedMediaType("Send the body as application/json.")
            return {}
        body = await request.json_body(MAX_JSON_BYTES)
        if not isinstance(body, dict):
            raise BadRequest("The request body must be a JSON object.")
        return body


def _query(request: Request, known: tuple[str, ...]) -> dict[str, str]:
    fields = parse_qs(request.query, keep_blank_values=True)
    for name in fields:
        if name not in known:
            raise BadRequest(f"Unknown query parameter '{name}' (known here: "
                             f"{', '.join(known) or 'none'}).")
    return {k: v[-1] for k, v in fields.items()}


def _tenant(query: dict[str, str]) -> str | None:
    return tenant_of(query["tenant"]) if "tenant" in query else None


async def _body_chunks(request: Request, idle_seconds: float) -> AsyncIterator[bytes]:
    """The request body as it arrives (never whole in memory): no bound on its length or its
    whole time, but 408 when nothing arrives for ``idle_seconds``; 400 if the client leaves."""
    while True:
        try:
            async with asyncio.timeout(idle_seconds):
                message = await request.receive()
        except TimeoutError:
            raise RequestTimeout(f"Nothing of the body arrived for {idle_seconds:g} seconds; "
                                 "send it without pauses.") from None
        if message["type"] == "http.disconnect":
            raise BadRequest("The client left before the body ended.")
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return
