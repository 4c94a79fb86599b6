"""Providers and 206 Partial Content (graphsec.pressure.providers and the resource layer's
reads): failing providers' rows left out by the store, one ``Warning`` element per failure,
``$top`` and nextLinks over the healthy rows, a GET by id answering its provider's status.

The reads run on the real store of each backend, through ``EntitySetResource`` with the
``Call.providers`` the HTTP layer passes (tests/system/test_providers_server.py goes through
``graphsec serve --config``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from graphsec.app import create_app
from graphsec.auth.principal import Principal
from graphsec.config import Settings
from graphsec.errors import GraphError, ItemNotFound
from graphsec.odata.filter import parse_filter
from graphsec.odata.options import Context, parse_options
from graphsec.pressure.config import Provider
from graphsec.pressure.providers import Answer, FanOut, exclusion, warning
from graphsec.resources import collection
from graphsec.resources.collection import Call, EntitySetResource
from graphsec.schema.security import ENTITY_SETS, SECURE_SCORES
from graphsec.schema.types import EntitySet
from graphsec.wire import Response
from tests.conftest import RW, TENANT, score

MICROSOFT = Provider("Microsoft", "SecureScore")
CONTOSO = Provider("Contoso", "EDR")


def failing(provider: Provider, status: int = 500, **kw: int) -> Provider:
    return Provider(provider.vendor, provider.provider, status, **kw)


# -- pure: Warning, exclusion, fan-out ---------------------------------------------------------

def test_warning_has_one_element_per_failure_and_leaves_404_out() -> None:
    answers = (Answer(MICROSOFT, 504, 10000), Answer(CONTOSO, 404, 3),
               Answer(Provider("Fabrikam", "Mail"), 403, 10))
    assert warning(answers) == ('199 - "Microsoft/SecureScore/504/10000", '
                                '199 - "Fabrikam/Mail/403/10"')
    assert warning((Answer(CONTOSO, 404, 3),)) is None
    assert warning(()) is None


def test_exclusion_names_each_failing_provider_and_escapes_quotes() -> None:
    text = exclusion((CONTOSO, Provider("O'Brien", "X")))
    assert text == ("not ((vendorInformation/vendor eq 'Contoso' and vendorInformation/provider "
                    "eq 'EDR') or (vendorInformation/vendor eq 'O''Brien' and "
                    "vendorInformation/provider eq 'X'))")
    assert exclusion(()) is None


@pytest.mark.parametrize("entity_set", [pytest.param(s, id=s.name) for s in ENTITY_SETS])
def test_the_exclusion_is_a_valid_filter_on_every_entity_set(entity_set: EntitySet) -> None:
    text = exclusion((CONTOSO,))
    assert text is not None
    parse_filter(text, entity_set.entity_type)


class VirtualTime:
    """asyncio.sleep and a monotonic clock for the fan-out, in virtual time per task: each
    provider's wait is recorded and advances only its own task's clock."""

    def __init__(self) -> None:
        self.now: dict[asyncio.Task[Any] | None, float] = {}
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now.get(asyncio.current_task(), 0.0)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        task = asyncio.current_task()
        self.now[task] = self.now.get(task, 0.0) + seconds
        await asyncio.sleep(0)


async def test_the_fan_out_waits_each_provider_capped_at_its_timeout_and_measures_it() -> None:
    time = VirtualTime()
    providers = (Provider("A", "Slow", latency_ms=250),  # healthy, slow: waited, not reported
                 Provider("B", "Hung", latency_ms=12_000),  # past its 10 s timeout: 504
                 Provider("C", "Down", 403, latency_ms=10),
                 Provider("D", "Gone", 404),
                 Provider("E", "Fine"))  # healthy and quick: not waited for
    fan = FanOut(providers, sleep=time.sleep, clock=time.clock)
    answers = await fan.answers()
    assert sorted(time.slept) == [0.01, 0.25, 10.0]
    assert [(a.provider.vendor, a.status, a.latency_ms) for a in answers] == [
        ("B", 504, 10_000), ("C", 403, 10), ("D", 404, 0)]
    assert set(fan.failing) == {("b", "hung"), ("c", "down"), ("d", "gone")}
    assert fan.failure_of("c", "DOWN") is providers[2]
    assert fan.failure_of("E", "Fine") is None
    assert fan.failure_of(None, "Down") is None


async def test_around_cancels_the_providers_wait_when_the_read_fails() -> None:
    fan = FanOut((Provider("A", "Slow", latency_ms=600_000, provider_timeout_ms=600_000),))

    async def broken() -> None:
        raise ItemNotFound("gone")

    with pytest.raises(ItemNotFound):
        await asyncio.wait_for(fan.around(broken()), timeout=30)


# -- the resource layer on a real store ---------------------------------------------------------

URL = "/v1.0/security/secureScores"


def a_call(raw: dict[str, str] | None = None, providers: tuple[Provider, ...] = (),
           context: Context = "collection", entity_set: EntitySet = SECURE_SCORES) -> Call:
    raw = raw or {}
    return Call(
        principal=Principal(TENANT, frozenset({RW}), frozenset(), "tester"),
        entity_set=entity_set, version="v1.0", base_url="http://graph.test/v1.0",
        path_and_query=(f"/v1.0/security/{entity_set.name}", raw),
        options=parse_options(raw, entity_set.entity_type, context, entity_set.name),
        providers=providers)


@pytest.fixture
async def resource(settings: Settings) -> AsyncIterator[EntitySetResource]:
    app = create_app(settings)
    await app.resource.store.open()
    yield app.resource
    await app.resource.store.close()


ROWS = [  # id, day, vendor, provider: newest first is s6, s5, … s0
    ("s0", "2024-01-01", "Microsoft", "SecureScore"),
    ("s1", "2024-01-02", "Contoso", "EDR"),
    ("s2", "2024-01-03", "Microsoft", "SecureScore"),
    ("s3", "2024-01-04", "contoso", "edr"),  # names compare case-insensitively
    ("s4", "2024-01-05", "Microsoft", "SecureScore"),
    ("s5", "2024-01-06", "Contoso", "EDR"),
    ("s6", "2024-01-07", "Contoso", "EDR"),
]


async def create_rows(resource: EntitySetResource,
                      rows: list[tuple[str, str, str, str]] = ROWS) -> None:
    for entity_id, day, vendor, provider in rows:
        vendor_information = {"provider": provider, "providerVersion": None,
                              "subProvider": None, "vendor": vendor}
        body = score(id=entity_id, createdDateTime=f"{day}T00:00:00Z",
                     vendorInformation=vendor_information)
        assert (await resource.create(a_call(), body)).status == 201


def ids(response: Response) -> list[str]:
    return [v["id"] for v in orjson.loads(response.body)["value"]]


def follow(link: str) -> dict[str, str]:
    """The canonical options of a nextLink, as the HTTP layer would read them."""
    return {k.removeprefix("$"): v for k, v in parse_qsl(urlsplit(link).query)}


async def test_a_failing_provider_s_rows_are_left_out_with_206_and_warning(
        resource: EntitySetResource) -> None:
    await create_rows(resource)
    r = await resource.list(a_call({"count": "true"}, (MICROSOFT, failing(CONTOSO, 503))))
    assert r.status == 206
    assert r.headers["Warning"] == '199 - "Contoso/EDR/503/0"'
    assert ids(r) == ["s4", "s2", "s0"]
    assert orjson.loads(r.body)["@odata.count"] == 3


async def test_healthy_providers_change_nothing(resource: EntitySetResource) -> None:
    await create_rows(resource)
    r = await resource.list(a_call({}, (MICROSOFT, CONTOSO)))
    assert (r.status, "Warning" in r.headers) == (200, False)
    assert ids(r) == ["s6", "s5", "s4", "s3", "s2", "s1", "s0"]


async def test_a_provider_answering_404_is_left_out_but_not_reported(
        resource: EntitySetResource) -> None:
    await create_rows(resource)
    r = await resource.list(a_call({}, (failing(CONTOSO, 404),)))
    assert (r.status, "Warning" in r.headers) == (200, False)
    assert ids(r) == ["s4", "s2", "s0"]


async def test_every_provider_failing_is_206_with_an_empty_value(
        resource: EntitySetResource) -> None:
    await create_rows(resource)
    r = await resource.list(a_call({}, (failing(MICROSOFT, 401), failing(CONTOSO, 403))))
    assert r.status == 206
    assert r.headers["Warning"] == ('199 - "Microsoft/SecureScore/401/0", '
                                    '199 - "Contoso/EDR/403/0"')
    assert orjson.loads(r.body)["value"] == []


async def test_a_provider_without_rows_in_the_set_is_still_reported(
        resource: EntitySetResource) -> None:
    """Graph federates every read to every provider: an unlicensed provider is reported on
    an empty answer too (docs/configuration.md, "Which providers count")."""
    await create_rows(resource, ROWS[:1])
    r = await resource.list(a_call({}, (failing(Provider("Fabrikam", "Mail"), 500),)))
    assert (r.status, r.headers["Warning"]) == (206, '199 - "Fabrikam/Mail/500/0"')
    assert ids(r) == ["s0"]


async def test_top_counts_healthy_rows_and_next_links_walk_them_all_once(
        resource: EntitySetResource) -> None:
    """The store filters: a page of $top=2 holds two healthy rows even where failing rows
    come first in the order (filtering after the read would give short or empty pages)."""
    await create_rows(resource)
    providers = (failing(CONTOSO, 500),)
    seen: list[str] = []
    raw = {"top": "2"}
    for _ in range(5):
        r = await resource.list(a_call(raw, providers))
        assert r.status == 206
        page = orjson.loads(r.body)
        seen += [v["id"] for v in page["value"]]
        if "@odata.nextLink" not in page:
            break
        assert len(page["value"]) == 2
        raw = follow(page["@odata.nextLink"])
    assert seen == ["s4", "s2", "s0"]


async def test_a_next_link_stays_valid_when_the_provider_recovers(
        resource: EntitySetResource) -> None:
    await create_rows(resource)
    first = await resource.list(a_call({"top": "2"}, (failing(CONTOSO, 500),)))
    link = orjson.loads(first.body)["@odata.nextLink"]
    rest = await resource.list(a_call(follow(link), ()))  # healthy again: its rows return
    assert rest.status == 200
    assert ids(rest) == ["s1", "s0"]


async def test_the_exclusion_is_anded_with_the_client_s_filter(
        resource: EntitySetResource) -> None:
    await create_rows(resource)
    raw = {"filter": "createdDateTime ge 2024-01-02T00:00:00Z"}
    r = await resource.list(a_call(raw, (failing(CONTOSO, 500),)))
    assert ids(r) == ["s4", "s2"]
    raw = {"filter": "vendorInformation/vendor eq 'Contoso'"}
    assert ids(await resource.list(a_call(raw, (failing(CONTOSO, 500),)))) == []


@pytest.mark.parametrize("raw", [pytest.param({}, id="count"),
                                 pytest.param({"filter": "currentScore gt 0"}, id="filtered")])
async def test_count_leaves_the_failing_provider_out_with_206(
        resource: EntitySetResource, raw: dict[str, str]) -> None:
    await create_rows(resource)
    r = await resource.count(a_call(raw, (failing(CONTOSO, 502),), context="count"))
    assert (r.status, r.body, r.headers["Warning"]) == (206, b"3", '199 - "Contoso/EDR/502/0"')
    r = await resource.count(a_call(raw, (failing(CONTOSO, 404),), context="count"))
    assert (r.status, r.body, "Warning" in r.headers) == (200, b"3", False)


@pytest.mark.parametrize(("status", "code", "retry_after"), [
    pytest.param(403, "Authorization_RequestDenied", None, id="403"),
    pytest.param(500, "generalException", None, id="500"),
    pytest.param(503, "serviceNotAvailable", "1", id="503"),
    pytest.param(504, "GatewayTimeout", None, id="504"),
])
async def test_get_by_id_answers_its_failing_provider_s_status(
        resource: EntitySetResource, status: int, code: str, retry_after: str | None) -> None:
    await create_rows(resource)
    with pytest.raises(GraphError) as raised:
        await resource.get(a_call({}, (failing(CONTOSO, status),), "entity"), "s3")
    assert (raised.value.status, raised.value.code) == (status, code)
    assert raised.value.headers.get("Retry-After") == retry_after


async def test_get_by_id_of_a_provider_answering_404_is_item_not_found(
        resource: EntitySetResource) -> None:
    await create_rows(resource)
    with pytest.raises(ItemNotFound):
        await resource.get(a_call({}, (failing(CONTOSO, 404),), "entity"), "s1")


async def test_get_by_id_with_another_provider_failing_is_206_with_the_entity(
        resource: EntitySetResource) -> None:
    await create_rows(resource)
    r = await resource.get(a_call({}, (failing(CONTOSO, 500),), "entity"), "s0")
    assert (r.status, r.headers["Warning"]) == (206, '199 - "Contoso/EDR/500/0"')
    assert orjson.loads(r.body)["id"] == "s0"
    with pytest.raises(ItemNotFound):
        await resource.get(a_call({}, (failing(CONTOSO, 500),), "entity"), "missing")


async def test_no_providers_run_no_fan_out(resource: EntitySetResource,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The hot path: with ``Call.providers`` empty nothing of the fan-out runs."""
    await create_rows(resource, ROWS[:2])

    def refuse(*args: object, **kw: object) -> FanOut:
        raise AssertionError("a fan-out without providers")

    monkeypatch.setattr(collection, "FanOut", refuse)
    assert ids(await resource.list(a_call())) == ["s1", "s0"]
    assert (await resource.count(a_call(context="count"))).body == b"2"
    assert (await resource.get(a_call(context="entity"), "s0")).status == 200


async def test_rows_without_vendor_information_are_healthy(resource: EntitySetResource) -> None:
    body = score(id="bare", vendorInformation=None)
    assert (await resource.create(a_call(), body)).status == 201
    r = await resource.list(a_call({}, (failing(MICROSOFT, 500), failing(CONTOSO, 500))))
    assert (r.status, ids(r)) == (206, ["bare"])
