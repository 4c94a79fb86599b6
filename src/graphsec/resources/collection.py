"""Generic behaviour of an entity set: create, read, list, count, update, delete.

Nothing here is written per entity set; what is truly an entity set's own comes from its schema
declaration, rules included (``create_rule``/``update_rule``, ``graphsec.schema.rules``). The
tenant of every operation is the caller's, taken from the verified token; it is passed to the
store on every call, with the entity set's declaration.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

import orjson

from graphsec.auth.principal import READ, WRITE, Principal
from graphsec.errors import (
    BadRequest,
    ErrorDetail,
    Forbidden,
    GraphError,
    ItemNotFound,
    RequestEntityTooLarge,
    Upstream,
)
from graphsec.odata.filter import parse_filter
from graphsec.odata.filter_ast import And
from graphsec.odata.options import QueryOptions
from graphsec.odata.query import ListQuery, OrderKey, default_order, total_order
from graphsec.odata.skiptoken import SkipTokens, fingerprint
from graphsec.pressure.config import Provider
from graphsec.pressure.providers import Answer, FanOut, exclusion, warning
from graphsec.schema.limits import DocumentTooLarge, Limits
from graphsec.schema.rules import RuleViolation
from graphsec.schema.types import Derive, EntitySet
from graphsec.schema.values import (
    Mode,
    ValidationError,
    check_body,
    complete,
    merge,
    now_datetime,
)
from graphsec.storage.base import Changed, Store
from graphsec.wire import Response, collection_body, empty, entity_body, json_response, text

MAX_ID_LENGTH = 512
LIMITS = Limits()
PROVIDER_RETRY_AFTER_SECONDS = 1
"""``Retry-After`` of a GET by id whose provider answers 429 or 503."""


@dataclass(slots=True)
class Call:
    """One request as the resource layer sees it (not frozen: a frozen dataclass's ``__init__``
    costs four times as much, and one is built for every request)."""

    principal: Principal
    entity_set: EntitySet
    version: str
    base_url: str
    """``scheme://host/version``, for context URLs, nextLinks and Location headers."""
    path_and_query: tuple[str, dict[str, str]]
    """The request path (as sent) and its canonical options, to build nextLinks from."""
    options: QueryOptions
    prefer: frozenset[str] = frozenset()
    providers: tuple[Provider, ...] = ()
    """The tenant's configured providers (``[[providers]]``): every read is federated to them
    (``graphsec.pressure.providers``); none, and reads run as they always do."""

    @property
    def tenant(self) -> str:
        return self.principal.tenant

    def context(self, suffix: str = "") -> str:
        select = f"({','.join(self.options.select)})" if self.options.select else ""
        return f"{self.base_url}/$metadata#security/{self.entity_set.name}{select}{suffix}"

    def item_url(self, entity_id: str) -> str:
        return f"{self.base_url}/security/{self.entity_set.name}/{quote(entity_id, safe='')}"


def invalid_body(exc: ValidationError) -> BadRequest:
    return BadRequest(
        str(exc),
        details=[ErrorDetail("invalidValue", p.message, p.target) for p in exc.problems],
    )


def refused(exc: RuleViolation) -> BadRequest:
    details = [ErrorDetail("invalidValue", str(exc), exc.target)] if exc.target else []
    return BadRequest(str(exc), details=details)


def too_large(exc: DocumentTooLarge) -> RequestEntityTooLarge:
    details = [ErrorDetail("invalidValue", str(exc), exc.target)] if exc.target else []
    return RequestEntityTooLarge(str(exc), details=details)


class EntitySetResource:
    """The operations every entity set supports, on one store, within ``limits``."""

    def __init__(self, store: Store, skiptokens: SkipTokens, limits: Limits = LIMITS) -> None:
        self.store = store
        self.skiptokens = skiptokens
        self.limits = limits

    # -- reading --------------------------------------------------------------------------------

    async def get(self, call: Call, entity_id: str) -> Response:
        call.principal.require(READ)
        if call.providers:
            return await self._get_federated(call, entity_id)
        doc = await self.store.get(call.tenant, call.entity_set, entity_id)
        if doc is None:
            raise self._not_found(call, entity_id)
        return json_response(200, entity_body(call.context("/$entity"), self._project(call, doc)))

    async def _get_federated(self, call: Call, entity_id: str) -> Response:
        """A GET by id with providers: the entity's own provider failing answers its status
        as a Graph error (404 ``itemNotFound``); other failing providers make it a 206 with
        ``Warning``, as Graph's example for a GET by id shows."""
        fan = FanOut(call.providers)
        doc, answers = await fan.around(self.store.get(call.tenant, call.entity_set, entity_id))
        if doc is None:
            raise self._not_found(call, entity_id)
        vendor_information = orjson.loads(doc).get("vendorInformation") or {}
        own = fan.failure_of(vendor_information.get("vendor"),
                             vendor_information.get("provider"))
        if own is not None:
            raise self._provider_failed(call, entity_id, own)
        body = entity_body(call.context("/$entity"), self._project(call, doc))
        return _partial(json_response(200, body), answers)

    async def list(self, call: Call) -> Response:
        call.principal.require(READ)
        opts = call.options
        order = self._order(call)
        def qfp() -> str:  # only where a skiptoken is read or made: most pages are the last
            return fingerprint(call.tenant, call.entity_set.name, opts.raw.get("filter", ""),
                               ",".join(k.text for k in order))

        after = None
        if opts.skiptoken is not None:
            after = self.skiptokens.decode(opts.skiptoken, qfp(), len(order))
        limit = opts.top or call.entity_set.default_page_size
        query = ListQuery(order=order, limit=limit, skip=0 if after else opts.skip,
                          after=after, filter=opts.filter, count=opts.count)
        answers: tuple[Answer, ...] = ()
        if call.providers:
            fan = FanOut(call.providers)
            page, answers = await fan.around(
                self.store.list(call.tenant, call.entity_set, self._healthy(call, query, fan)))
        else:
            page = await self.store.list(call.tenant, call.entity_set, query)
        next_link = None
        if page.next_after is not None:
            next_link = self._next_link(call, self.skiptokens.encode(qfp(), page.next_after))
        docs = [self._project(call, d) for d in page.docs]
        response = json_response(200, collection_body(call.context(), docs, next_link,
                                                      page.count))
        return _partial(response, answers) if answers else response

    async def count(self, call: Call) -> Response:
        call.principal.require(READ)
        order = (OrderKey(("id",)),)
        query = ListQuery(order=order, limit=1, filter=call.options.filter)
        if not call.providers:
            return text(200, str(await self.store.count(call.tenant, call.entity_set, query)))
        fan = FanOut(call.providers)
        count, answers = await fan.around(
            self.store.count(call.tenant, call.entity_set, self._healthy(call, query, fan)))
        return _partial(text(200, str(count)), answers)

    @staticmethod
    def _healthy(call: Call, query: ListQuery, fan: FanOut) -> ListQuery:
        """``query`` leaving out the rows of the failing providers, in the store's SQL (the
        exclusion is ANDed into the ``$filter``). The skiptoken's fingerprint does not include
        it: keyset paging stays exact under any extra predicate, so a nextLink stays valid
        when a provider fails or recovers between pages."""
        text_ = exclusion(fan.failing.values())
        if text_ is None:
            return query
        healthy = parse_filter(text_, call.entity_set.entity_type)
        combined = healthy if query.filter is None else And((query.filter, healthy))
        return replace(query, filter=combined)

    def _order(self, call: Call) -> tuple[OrderKey, ...]:
        keys = call.options.orderby
        return default_order(call.entity_set) if keys is None else total_order(keys)

    def _next_link(self, call: Call, token: str) -> str:
        path, raw = call.path_and_query
        params = {k: v for k, v in raw.items() if k not in ("skip", "skiptoken")}
        params["skiptoken"] = token
        query = "&".join(f"${k}={quote(v, safe=',()/:*')}" for k, v in params.items())
        return f"{call.base_url.rsplit('/', 1)[0]}{path}?{query}"

    def _project(self, call: Call, doc: bytes) -> bytes:
        select = call.options.select
        if not select:
            return doc
        data = orjson.loads(doc)
        names = select if "id" in select else ("id", *select)
        return orjson.dumps({n: data.get(n) for n in names}, option=orjson.OPT_SORT_KEYS)

    def _not_found(self, call: Call, entity_id: str) -> ItemNotFound:
        return ItemNotFound(
            f"No {call.entity_set.entity_type.name} with id '{entity_id}' was found "
            f"in /security/{call.entity_set.name}."
        )

    def _provider_failed(self, call: Call, entity_id: str, provider: Provider) -> GraphError:
        failure = provider.failure
        assert failure is not None
        status = failure[0]
        if status == 404:
            return self._not_found(call, entity_id)
        retry = ({"Retry-After": str(PROVIDER_RETRY_AFTER_SECONDS)} if status in (429, 503)
                 else None)
        return Upstream(status, f"The provider {provider.vendor}/{provider.provider} that holds "
                        f"{call.entity_set.entity_type.name} '{entity_id}' answered {status}.",
                        headers=retry)

    # -- writing --------------------------------------------------------------------------------

    async def create(self, call: Call, body: Any) -> Response:
        call.principal.require(WRITE)
        entity = call.entity_set.entity_type
        doc = self._check(call, body, "create")
        if (rule := call.entity_set.create_rule) is not None:
            try:
                rule(doc, self.limits)
            except RuleViolation as exc:
                raise refused(exc) from None
        if doc.get("id") is None:
            doc["id"] = str(uuid.uuid4())
        self._check_id(doc["id"])
        tenant = doc.get("azureTenantId") or call.tenant
        self._check_tenant(call, tenant)
        doc["azureTenantId"] = call.tenant
        now = now_datetime()
        for stamp in call.entity_set.created_stamps:
            if doc.get(stamp) is None:
                doc[stamp] = now
        stored = await self.store.create(call.tenant, call.entity_set, complete(entity, doc),
                                         self._admit)
        return json_response(201, entity_body(call.context("/$entity"), stored),
                             {"Location": call.item_url(doc["id"])})

    async def update(self, call: Call, entity_id: str, body: Any) -> Response:
        call.principal.require(WRITE)
        entity = call.entity_set.entity_type
        patch = self._check(call, body, "patch")
        if "id" in patch and patch["id"] != entity_id:
            raise BadRequest(f"The id '{patch['id']}' in the body does not match the id "
                             f"'{entity_id}' in the URL; an entity's id cannot be changed.")
        patch.pop("id", None)
        if "azureTenantId" in patch:
            self._check_tenant(call, patch.pop("azureTenantId"))
        not_updatable = [k for k in patch if (p := entity.property(k)) and not p.updatable]
        if not_updatable:
            can = [p.name for p in (*entity.properties, *entity.patch_extras) if p.updatable]
            raise BadRequest(
                f"The propert{'y' if len(not_updatable) == 1 else 'ies'} "
                f"{', '.join(repr(k) for k in not_updatable)} of '{entity}' cannot be updated "
                f"(not updatable); a PATCH may change: {', '.join(can)}."
            )

        for stamp in call.entity_set.modified_stamps:
            patch[stamp] = now_datetime()
        derive = self._derive(call, patch)

        def change(stored: dict[str, Any]) -> Changed:
            # the stored document is complete already: only what the client sent needs
            # completing (derived values come complete)
            new = complete(entity, merge(entity, stored, patch), only=set(patch))
            return Changed(new, derive(new) if derive is not None else ())

        doc = await self.store.update(call.tenant, call.entity_set, entity_id, change,
                                      self._admit)
        if doc is None:
            raise self._not_found(call, entity_id)
        representation = call.entity_set.patch_returns_entity
        applied: dict[str, str] = {}
        if "return=minimal" in call.prefer:
            representation, applied = False, {"Preference-Applied": "return=minimal"}
        elif "return=representation" in call.prefer:
            representation = True
            applied = {"Preference-Applied": "return=representation"}
        if not representation:
            return empty(204, applied)
        return json_response(200, entity_body(call.context("/$entity"), doc), applied)

    async def update_from_body(self, call: Call, body: Any) -> Response:
        """The seed page's ``PATCH /security/<set>`` form: the entity is named by the body's id."""
        entity_id = body.get("id") if isinstance(body, dict) else None
        if not isinstance(entity_id, str) or not entity_id:
            raise BadRequest(
                f"PATCH on the collection needs the entity's 'id' in the body; or address the "
                f"entity itself: PATCH /{call.version}/security/{call.entity_set.name}/{{id}}."
            )
        return await self.update(call, entity_id, body)

    async def delete(self, call: Call, entity_id: str) -> Response:
        call.principal.require(WRITE)
        if not await self.store.delete(call.tenant, call.entity_set, entity_id):
            raise self._not_found(call, entity_id)
        return empty(204)

    def _check(self, call: Call, body: Any, mode: Mode) -> dict[str, Any]:
        """The body checked against the entity type and the limits (400, or 413 when it would
        make the stored entity too large)."""
        try:
            return check_body(call.entity_set.entity_type, body, mode, self.limits)
        except ValidationError as exc:
            raise invalid_body(exc) from None
        except DocumentTooLarge as exc:
            raise too_large(exc) from None

    def _derive(self, call: Call, patch: dict[str, Any]) -> Derive | None:
        """What the entity set's own update rule derives from ``patch`` (400 when it refuses
        the body); None for a set without one."""
        rule = call.entity_set.update_rule
        if rule is None:
            return None
        try:
            return rule(patch, call.principal.identity, self.limits)
        except RuleViolation as exc:
            raise refused(exc) from None

    def _admit(self, data: bytes) -> None:
        """The store calls this with the encoded, complete document just before writing it:
        the size is measured on what is stored, once, without encoding it a second time."""
        if len(data) > self.limits.max_document_bytes:
            raise too_large(DocumentTooLarge(self.limits.max_document_bytes))

    @staticmethod
    def _check_id(entity_id: str) -> None:
        if not entity_id.strip() or len(entity_id) > MAX_ID_LENGTH:
            raise BadRequest(f"Property 'id' must be a non-blank string of at most "
                             f"{MAX_ID_LENGTH} characters.")
        if any(ord(ch) < 32 for ch in entity_id):
            raise BadRequest("Property 'id' cannot contain control characters.")

    @staticmethod
    def _check_tenant(call: Call, tenant: Any) -> None:
        # tenant ids are GUIDs, equal whatever their case; the caller's is lower case already
        if not isinstance(tenant, str) or tenant.lower() != call.tenant:
            raise Forbidden(
                f"The caller's tenant is '{call.tenant}'; data of tenant '{tenant}' cannot be "
                "written with this token (azureTenantId must be the caller's own tenant)."
            )


def _partial(response: Response, answers: tuple[Answer, ...]) -> Response:
    """``response`` as a 206 Partial Content with ``Warning`` when a provider failed (404s
    aside); unchanged otherwise."""
    value = warning(answers)
    if value is not None:
        response.status = 206
        response.headers["Warning"] = value
    return response
