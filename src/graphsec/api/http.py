"""The ASGI application: request ids, authentication, body reading, dispatch, error rendering.

A thin layer by design (the read path and the JSON encoder decide graphsec's speed, see
docs/design.md); it speaks ASGI directly so that nothing sits between the server and the handlers.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote

import orjson

from graphsec.api import batch
from graphsec.api.disconnect import Departure, unless_client_leaves
from graphsec.api.origin import Origin
from graphsec.api.probes import PATHS as PROBE_PATHS
from graphsec.api.probes import Probes
from graphsec.api.request_ids import RequestIds
from graphsec.api.routing import Router, Target
from graphsec.auth.principal import Principal
from graphsec.auth.tokens import TokenVerifier
from graphsec.errors import (
    BadRequest,
    GraphError,
    MethodNotAllowed,
    RequestEntityTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
)
from graphsec.observability.observer import Observer
from graphsec.odata.options import Context, QueryOptions, parse_options, split_query
from graphsec.pressure.config import Behaviour
from graphsec.pressure.throttle import Throttle
from graphsec.resources.collection import Call, EntitySetResource
from graphsec.wire import GRAPH_JSON, Response, StreamingResponse, error_response, json_response

if TYPE_CHECKING:
    from graphsec.pressure.chaos import Monkey

log = logging.getLogger("graphsec")

# the ASGI types as the specification (and httpx's ASGI transport) has them
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_OPTIONS_CONTEXT: dict[str, Context] = {
    "collection": "collection", "item": "entity", "count": "count", "ref": "entity",
}


_request_ids = RequestIds()


class Door(Protocol):
    """A handler for paths outside ``/v1.0`` and ``/beta`` (see ``GraphApp.doors``): its answer,
    or None when the path is not one of its own. A ``label`` attribute, when it has one, names
    its requests in the metrics (``entra``); without, they count under ``none``."""

    async def __call__(self, request: Request, base: str) -> Response | None: ...


class Request:
    """The parts of an ASGI HTTP request graphsec uses.

    The path and query string are UTF-8 (RFC 3986), raw or percent-encoded; bytes that are not
    UTF-8 are kept as surrogates here and refused with a 400 by :func:`check_utf8`. Header values
    are Latin-1, as HTTP defines them.
    """

    __slots__ = ("client_request_id", "entity_set", "headers", "method", "principal", "query",
                 "raw_path", "receive", "request_id", "scope")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self.receive = receive
        self.method: str = scope["method"]
        raw = scope.get("raw_path")
        self.raw_path: str = (raw.decode("utf-8", "surrogateescape").split("?", 1)[0] if raw
                              else scope["path"])
        self.query: str = scope.get("query_string", b"").decode("utf-8", "surrogateescape")
        self.headers: dict[str, str] = {}
        for k, v in scope.get("headers", ()):
            name = k.decode("latin-1").lower()
            value = v.decode("latin-1")
            self.headers[name] = f"{self.headers[name]}, {value}" if name in self.headers else value
        self.request_id = _request_ids.next()
        sent = self.headers.get("client-request-id", "").strip()
        self.client_request_id = sent[:200] if sent else self.request_id
        self.principal: Principal | None = None
        """The verified caller, once known (for the access log)."""
        self.entity_set: str | None = None
        """The metrics' entity set label when the path does not tell it (a door's);
        None: the observer reads it from the path (``graphsec.observability.observer``)."""

    def bound_body_reads(self, seconds: float) -> None:
        """From now on, reading the body raises :class:`RequestTimeout` once ``seconds`` have
        passed: one deadline for the whole body, so a byte a second cannot stretch it."""
        receive = self.receive
        deadline = asyncio.get_running_loop().time() + seconds

        async def receive_by_deadline() -> Message:
            try:
                async with asyncio.timeout_at(deadline):
                    return await receive()
            except TimeoutError:
                raise RequestTimeout(
                    f"The request body did not arrive within {seconds:g} seconds; send it "
                    "without pauses."
                ) from None

        self.receive = receive_by_deadline

    async def body(self, limit: int) -> bytes:
        """The whole body; 413 as soon as it exceeds ``limit`` bytes."""
        length = self.headers.get("content-length")
        if length is not None and length.isascii() and length.isdigit() and int(length) > limit:
            raise _too_large(limit)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def json_body(self, limit: int) -> Any:
        content_type = self.headers.get("content-type", "")
        media = content_type.split(";", 1)[0].strip().lower()
        if media != "application/json":
            shown = f"'{content_type}'" if content_type else "missing"
            raise UnsupportedMediaType(
                f"The Content-Type is {shown}; send the body as application/json."
            )
        data = await self.body(limit)
        if not data.strip():
            raise BadRequest("The request body is empty; send the entity as a JSON object.")
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"The request body is not valid JSON: {exc}.") from None


def _too_large(limit: int) -> RequestEntityTooLarge:
    return RequestEntityTooLarge(
        f"The request body is larger than the limit of {limit} bytes."
    )


class GraphApp:
    """The ASGI callable. ``startup``/``shutdown`` run on lifespan events, or lazily."""

    def __init__(
        self,
        router: Router,
        verifier: TokenVerifier,
        resource: EntitySetResource,
        max_body_bytes: int,
        startup: Callable[[], Awaitable[None]],
        shutdown: Callable[[], Awaitable[None]],
        origin: Origin,
        body_timeout_seconds: float,
        batch_timeout_seconds: float = 30,
        throttle: Throttle | None = None,
        monkey: Monkey | None = None,
        behaviour: Behaviour | None = None,
        doors: Sequence[Door] = (),
        probes: Probes | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.probes = probes
        """``/readyz`` and ``/metrics`` (``graphsec.api.probes``); None: neither is served."""
        self.observer = observer
        """Metrics and the access log, told of every request; None when both are off."""
        self.doors = tuple(doors)
        """What answers paths outside Graph's ``/v1.0`` and ``/beta``, asked in order after the
        Host check: Entra ID's paths (``graphsec.api.entra``), the admin API, the dashboard.
        The first that does not answer None wins; none answering is Graph's 400."""
        self.router = router
        self.verifier = verifier
        self.resource = resource
        self.max_body_bytes = max_body_bytes
        self.origin = origin
        self.body_timeout_seconds = body_timeout_seconds
        self.batch_timeout_seconds = batch_timeout_seconds
        self.throttle = throttle
        """Graph's limits, when throttling is on for some tenant (``pressure/throttle.py``)."""
        self.monkey = monkey
        """Random failures and latency, when chaos is on for some tenant."""
        self.behaviour = behaviour if behaviour is not None and behaviour.providers_anywhere \
            else None
        """Where providers' health is configured (``pressure/providers.py``); None when every
        provider is healthy, as by default."""
        self._startup = startup
        self._shutdown = shutdown
        self._started = False
        self._starting = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if not self._started:  # a server without lifespan events: start on the first request
            async with self._starting:
                if not self._started:
                    await self._startup()
                    self._started = True
        request = Request(scope, receive)
        started = time.perf_counter()
        try:
            response = await self.handle(request)
        except GraphError as exc:
            response = error_response(exc, request.request_id, request.client_request_id)
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.raw_path)
            response = error_response(
                GraphError("An internal error occurred; the request-id identifies it in the "
                           "server log."),
                request.request_id, request.client_request_id,
            )
        try:
            await self._send(send, request, response)
        finally:  # after the response (or the client's departure): its time is the client's
            if self.observer is not None:
                self.observer.done(request, response.status, time.perf_counter() - started)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._startup()
                    self._started = True
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _send(self, send: Send, request: Request, response: Response) -> None:
        rid = request.request_id.encode()
        headers = [
            (b"request-id", rid),
            (b"client-request-id", rid if request.client_request_id is request.request_id
             else request.client_request_id.encode("latin-1")),
            *_content_headers(response.content_type, "Cache-Control" in response.headers),
        ]
        if "origin" in request.headers:
            headers += _CORS_HEADERS
        if response.headers:
            headers += [(k.lower().encode(), v.encode("latin-1"))
                        for k, v in response.headers.items()]
        if isinstance(response, StreamingResponse):
            await _stream(send, response.status, headers, response.chunks)
            return
        headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    async def handle(self, request: Request) -> Response:
        path = request.raw_path
        # /healthz before the Host check: it carries no link, and load balancers send an IP
        probe = path.rstrip("/").lower()
        if probe == "/healthz":
            return json_response(200, b'{"status":"ok"}')
        if probe in PROBE_PATHS and self.probes is not None:  # before the Host check too
            return await self.probes.answer(probe, request.method, request.headers)
        base = self.origin.base(request.scope.get("scheme", "http"), request.headers.get("host"),
                                request.scope.get("server"))
        if not path.isascii():
            check_utf8(path, "path")
        if not request.query.isascii():
            check_utf8(request.query, "query string")
        if request.method == "OPTIONS" and "origin" in request.headers:
            return _preflight()
        version = self.router.version_of(path)
        if version is None:  # no cost on /v1.0 and /beta
            for door in self.doors:
                request.entity_set = getattr(door, "label", None)  # its errors count there too
                answer = await door(request, base)
                if answer is not None:
                    return answer
            request.entity_set = None
            first = path.lstrip("/").split("/", 1)[0]
            raise BadRequest(f"Invalid version: '{first}'. Use /v1.0 or /beta.")
        principal = request.principal = self.verifier.verify_header(
            request.headers.get("authorization"))
        if "batch" in path and _is_batch(path):
            return await self._batch(request, principal, base, version)
        method = request.method
        if method in ("POST", "PATCH"):
            request.bound_body_reads(self.body_timeout_seconds)
        return await self._serve(method, path, request.query, request.headers, principal, base,
                                 version, functools.partial(request.json_body,
                                                            self.max_body_bytes),
                                 request.receive)

    async def _serve(self, method: str, path: str, query: str, headers: dict[str, str],
                     principal: Principal, base: str, version: str,
                     body: Callable[[], Awaitable[Any]], watch: Receive | None) -> Response:
        """One request, top-level or of a batch, after authentication: route, options,
        dispatch. ``body`` reads the JSON body; ``watch`` (top level only) is where a client's
        departure shows, to stop lists and counts that may scan. Throttling and chaos, when
        on, come first (graphsec.pressure): a throttled request is not run at all."""
        target = self.router.resolve(path, method)
        throttle, monkey = self.throttle, self.monkey
        if throttle is None:
            if monkey is not None:
                await monkey.strike(principal.tenant)
            return await self._call(method, path, query, headers, principal, base, version,
                                    target, body, watch)
        async with throttle.admit(principal.application, principal.tenant,
                                  target.entity_set.name):
            if monkey is not None:
                await monkey.strike(principal.tenant)
            return await self._call(method, path, query, headers, principal, base, version,
                                    target, body, watch)

    async def _call(self, method: str, path: str, query: str, headers: dict[str, str],
                    principal: Principal, base: str, version: str, target: Target,
                    body: Callable[[], Awaitable[Any]], watch: Receive | None) -> Response:
        """A request admitted (throttling, chaos): its options, its call, its dispatch."""
        raw = split_query(query, version)
        if method == "GET":
            context: Context = _OPTIONS_CONTEXT[target.kind]
            options = parse_options(raw, target.entity_set.entity_type, context,
                                    target.entity_set.name)
        else:
            options = QueryOptions(raw=raw)
        call = Call(
            principal=principal,
            entity_set=target.entity_set,
            version=version,
            base_url=f"{base}/{version}",
            path_and_query=(path, raw),
            options=options,
            prefer=_prefer(headers.get("prefer", "")),
            providers=() if self.behaviour is None
            else self.behaviour.of(principal.tenant).providers,
        )
        return await self._dispatch(method, target, call, body, watch)

    async def _dispatch(self, method: str, target: Target, call: Call,
                        read_body: Callable[[], Awaitable[Any]],
                        watch: Receive | None) -> Response:
        r = self.resource
        if target.kind == "count":
            if watch is None:  # a request of a batch (the batch watches the client)
                return await r.count(call)
            return await unless_client_leaves(watch, r.count(call))
        if target.kind == "item":
            assert target.key is not None
            if method == "GET":
                return await r.get(call, target.key)
            if method == "DELETE":
                return await r.delete(call, target.key)
            return await r.update(call, target.key, await read_body())
        if method == "GET":
            if watch is None or not (call.options.may_scan or call.providers):  # soon over
                return await r.list(call)
            return await unless_client_leaves(watch, r.list(call))
        body = await read_body()
        if method == "PATCH":
            if not target.entity_set.collection_patch:
                raise BadRequest(f"PATCH is not supported on the collection; address the entity: "
                                 f"/{call.version}/security/{call.entity_set.name}/{{id}}.")
            return await r.update_from_body(call, body)
        return await r.create(call, body)

    async def _batch(self, request: Request, principal: Principal, base: str,
                     version: str) -> Response:
        """``POST /{version}/$batch``: every request of the batch through :meth:`_serve`, with
        the batch's own token; 200 with each request's answer (graphsec.api.batch)."""
        if request.method != "POST":
            raise MethodNotAllowed(request.method, ("POST",))
        request.bound_body_reads(self.body_timeout_seconds)
        items, sequential = batch.parse(await request.json_body(self.max_body_bytes))
        deadline = asyncio.get_running_loop().time() + self.batch_timeout_seconds
        ids: list[tuple[str, str]] = []
        for item in items:
            request_id = _request_ids.next()
            sent = item.headers.get("client-request-id", "").strip()
            ids.append((request_id, sent[:200] if sent else request_id))

        def refuse(n: int, error: GraphError) -> Response:
            return error_response(error, *ids[n])

        async def serve(n: int) -> Response:
            item = items[n]

            async def read_body() -> Any:
                return item.json_body()

            try:
                return await self._serve(item.method, f"/{version}/{item.path}", item.query,
                                         item.headers, principal, base, version, read_body,
                                         None)
            except GraphError as exc:
                return refuse(n, exc)
            except Exception:
                log.exception("unhandled error on %s %s in a batch", item.method, item.path)
                return refuse(n, GraphError("An internal error occurred; the request-id "
                                            "identifies it in the server log."))

        departure = Departure(request.receive)  # the body is read: receive() tells a departure
        try:
            answers = await batch.run(items, sequential, serve, refuse, deadline,
                                      departure.seen)
        finally:
            departure.stop()
        return json_response(200, batch.render(items, answers, ids))


async def _stream(send: Send, status: int, headers: list[tuple[bytes, bytes]],
                  chunks: AsyncIterator[bytes]) -> None:
    """A body of unknown length, sent as it is produced (the server chunks it). An error once
    the status is sent can only cut the body short: it is logged, and the client sees a body
    that does not end as its format says (for NDJSON, a last line without its newline)."""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    try:
        async for chunk in chunks:
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except Exception:
        log.exception("a streamed response failed after its status was sent")
    finally:
        await send({"type": "http.response.body", "body": b""})
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


def _is_batch(path: str) -> bool:
    """Whether ``path`` is ``/{version}/$batch`` (``$`` may be percent-encoded)."""
    segments = path.strip("/").split("/")
    return len(segments) == 2 and unquote(segments[1]).lower() == "$batch"


_NO_PREFERENCES: frozenset[str] = frozenset()

_CORS_HEADERS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-expose-headers",
     b"ETag, Location, Preference-Applied, request-id, client-request-id, "
     b"WWW-Authenticate, Retry-After"),
]


@functools.lru_cache(maxsize=8)
def _content_headers(content_type: str | None,
                     own_cache: bool = False) -> tuple[tuple[bytes, bytes], ...]:
    """The headers every response of a content type carries (JSON: Graph's OData-Version), and
    ``Cache-Control: no-store`` unless the response sets its own (``own_cache``: the dashboard's
    files, ``api/ui.py``)."""
    out = [] if own_cache else [(b"cache-control", b"no-store")]
    if content_type is not None:
        out.append((b"content-type", content_type.encode()))
    if content_type == GRAPH_JSON:
        out.append((b"odata-version", b"4.0"))
    return tuple(out)


def check_utf8(text: str, where: str) -> None:
    """400 if ``text`` (decoded with ``surrogateescape``) held bytes that are not UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(f"The {where} is not valid UTF-8; percent-encode it as UTF-8 "
                         "(RFC 3986).") from None


def _prefer(header: str) -> frozenset[str]:
    if not header:
        return _NO_PREFERENCES
    return frozenset(p.strip().lower().replace(" ", "") for p in header.split(",") if p.strip())


def _preflight() -> Response:
    return Response(204, b"", None, {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Methods": "GET, POST, PATCH, DELETE, OPTIONS",
        "Access-Control-Allow-Headers": "Authorization, Content-Type, Prefer, client-request-id, "
                                        "ConsistencyLevel",
        "Access-Control-Max-Age": "86400",
    })
