"""Chaos (graphsec.pressure.chaos): seeded, repeatable failures and latency, each failure with
Graph's error body for its status; in-process through the app for the wire shape."""

from __future__ import annotations

import dataclasses
from collections import Counter

import orjson
import pytest

from graphsec.config import Settings
from graphsec.errors import GraphError
from graphsec.pressure.chaos import Monkey, Outcome, failure
from graphsec.pressure.config import Behaviour, parse
from graphsec.wire import error_response
from tests.api.test_errors import assert_graph_error
from tests.conftest import OTHER_TENANT, TENANT, Headers, _client

URL = "/v1.0/security/secureScores"


def behaviour(chaos: dict[str, object], tenant_chaos: dict[str, object] | None = None) -> Behaviour:
    data: dict[str, object] = {"chaos": chaos}
    if tenant_chaos is not None:
        data["tenants"] = {TENANT: {"chaos": tenant_chaos}}
    return parse(data)


def outcomes(monkey: Monkey, n: int, tenant: str = TENANT) -> list[Outcome | None]:
    return [monkey.draw(tenant) for _ in range(n)]


class Sleeps:
    """A stand-in for asyncio.sleep that records what it was asked to wait."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


MIXED = {"rate": 0.5, "statuses": [429, 500, 502, 503, 504], "latency_ms": [0, 250], "seed": 7}


def test_a_seeded_monkey_gives_the_same_outcomes_twice() -> None:
    first = outcomes(Monkey(behaviour(MIXED)), 200)
    second = outcomes(Monkey(behaviour(MIXED)), 200)
    assert first == second
    statuses = Counter(o.status for o in first if o is not None)
    assert statuses[None] > 50  # not all failures, and every status drawn at some point
    assert set(statuses) == {None, 429, 500, 502, 503, 504}
    assert len({o.latency_ms for o in first if o is not None}) > 50


def test_another_seed_gives_another_sequence() -> None:
    assert outcomes(Monkey(behaviour(MIXED)), 50) != outcomes(
        Monkey(behaviour({**MIXED, "seed": 8})), 50)


def test_draws_stay_within_the_configured_statuses_and_latency() -> None:
    monkey = Monkey(behaviour({"rate": 1.0, "statuses": [503, 504], "latency_ms": [10, 20],
                               "seed": 1}))
    for outcome in outcomes(monkey, 300):
        assert outcome is not None
        assert outcome.status in (503, 504)
        assert 10 <= outcome.latency_ms <= 20


def test_rate_zero_with_latency_only_slows_requests() -> None:
    monkey = Monkey(behaviour({"latency_ms": [5, 5]}))
    assert outcomes(monkey, 20) == [Outcome(5, None)] * 20


def test_without_chaos_nothing_is_drawn() -> None:
    assert Monkey(Behaviour()).draw(TENANT) is None


def test_a_tenant_override_has_its_own_repeatable_sequence() -> None:
    """The overriding tenant draws from its own generator: the other tenants' traffic does not
    shift its sequence."""
    config = behaviour({"rate": 0.5, "seed": 3}, {"rate": 0.5, "seed": 11})
    alone = outcomes(Monkey(config), 40)
    busy = Monkey(config)
    interleaved = []
    for _ in range(40):
        busy.draw(OTHER_TENANT)
        interleaved.append(busy.draw(TENANT))
    assert interleaved == alone
    assert outcomes(Monkey(config), 40, OTHER_TENANT) != alone


def test_a_tenant_override_fails_every_request_while_others_pass() -> None:
    monkey = Monkey(behaviour({"rate": 0.0, "latency_ms": [0, 1]}, {"rate": 1.0}))
    assert all(o is not None and o.status is not None for o in outcomes(monkey, 20))
    assert all(o is not None and o.status is None for o in outcomes(monkey, 20, OTHER_TENANT))


async def test_strike_waits_the_drawn_latency_then_raises_the_drawn_failure() -> None:
    config = behaviour({"rate": 1.0, "statuses": [503], "latency_ms": [40, 40],
                        "retry_after_seconds": 7})
    sleeps = Sleeps()
    with pytest.raises(GraphError) as raised:
        await Monkey(config, sleep=sleeps).strike(TENANT)
    assert sleeps.seconds == [0.04]
    assert raised.value.status == 503
    assert raised.value.code == "serviceNotAvailable"
    assert raised.value.headers == {"Retry-After": "7"}


async def test_strike_lets_a_lucky_request_through_after_its_latency() -> None:
    sleeps = Sleeps()
    await Monkey(behaviour({"latency_ms": [30, 30]}), sleep=sleeps).strike(TENANT)
    assert sleeps.seconds == [0.03]


async def test_strike_without_chaos_neither_waits_nor_fails() -> None:
    sleeps = Sleeps()
    await Monkey(behaviour({}, {"rate": 1.0}), sleep=sleeps).strike(OTHER_TENANT)
    assert sleeps.seconds == []


@pytest.mark.parametrize(("status", "code", "retry_after"), [
    pytest.param(429, "TooManyRequests", "4", id="429"),
    pytest.param(500, "generalException", None, id="500"),
    pytest.param(502, "BadGateway", None, id="502"),
    pytest.param(503, "serviceNotAvailable", "4", id="503"),
    pytest.param(504, "GatewayTimeout", None, id="504"),
])
def test_each_failure_has_graph_s_code_and_retry_after_on_429_and_503(
        status: int, code: str, retry_after: str | None) -> None:
    error = failure(status, 4)
    assert (error.status, error.code, error.headers.get("Retry-After")) == (
        status, code, retry_after)
    body = orjson.loads(error_response(error, "rid", "crid").body)["error"]
    assert body["code"] == code
    if status == 429:  # Graph's documented throttling body (graph-second-wave.md §2.1)
        assert body["innerError"]["code"] == "429"
        assert body["innerError"]["status"] == "429"
    else:
        assert "status" not in body["innerError"]


async def test_chaos_through_the_app_answers_the_error_for_one_tenant_only(
        settings: Settings, auth: Headers) -> None:
    config = behaviour({}, {"rate": 1.0, "statuses": [429], "retry_after_seconds": 3})
    async for client in _client(dataclasses.replace(settings, behaviour=config)):
        r = await client.get(URL, headers=auth())
        error = assert_graph_error(r, 429, "TooManyRequests")
        assert r.headers["retry-after"] == "3"
        assert error["innerError"]["status"] == "429"  # type: ignore[index]
        other = await client.get(URL, headers=auth(tenant=OTHER_TENANT))
        assert other.status_code == 200, other.text


async def test_chaos_through_the_app_fails_writes_too_and_stores_nothing(
        settings: Settings, auth: Headers) -> None:
    config = behaviour({}, {"rate": 1.0, "statuses": [502]})
    async for client in _client(dataclasses.replace(settings, behaviour=config)):
        r = await client.post(URL, json={"id": "x"}, headers=auth())
        assert_graph_error(r, 502, "BadGateway")
    async for client in _client(settings):
        r = await client.get(f"{URL}/x", headers=auth())
        assert r.status_code == 404
