"""Throttling through the HTTP layer, in-process on both backends: which requests count, the
429 as Graph answers it, and a retry before ``Retry-After`` refused again. The limits here are
small (a tenant override of ``per_minute``); tests/system/test_throttling_server.py runs
Graph's own defaults against a real server with two workers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from graphsec.auth.tokens import LocalIssuer
from graphsec.config import Settings
from graphsec.pressure.config import parse
from tests.conftest import OTHER_TENANT, RW, TENANT, _client, score
from tests.support.postgres import execute

SCORES = "/v1.0/security/secureScores"
PROFILES = "/v1.0/security/secureScoreControlProfiles"
USERS = "/beta/security/userSecurityProfiles"


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with throttling on and ``TENANT`` limited to 5 /security requests a minute; the
    concurrency limit is raised past any batch here, so that the 7 parallel requests of a batch
    meet the minute's limit only (4 at once, Graph's, is tests/pressure' concern)."""
    behaviour = parse({"throttling": {"enabled": True, "concurrent": 50},
                       "tenants": {TENANT: {"throttling": {"per_minute": 5}}}})
    app_settings = dataclasses.replace(settings, behaviour=behaviour)
    if settings.backend == "postgresql":  # the buckets outlive a test there: start empty
        await execute(["DO $$ BEGIN IF to_regclass('graphsec_throttle.windows') IS NOT NULL THEN "
                       "TRUNCATE graphsec_throttle.windows, graphsec_throttle.leases; END IF; "
                       "END $$"], settings.database_url)
    async for c in _client(app_settings):
        yield c
        throttle = c._transport.app.throttle  # type: ignore[attr-defined]
        await throttle.close()


def headers(issuer: LocalIssuer, tenant: str = TENANT, application: str = "app-a") -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.mint(tenant, (RW,), application=application)}"}


async def test_the_sixth_request_in_a_minute_is_429_as_graph_answers_it(
        client: httpx.AsyncClient, issuer: LocalIssuer) -> None:
    mine = headers(issuer)
    for n in range(5):
        r = await client.get(SCORES, headers=mine)
        assert r.status_code == 200, (n, r.text)
    r = await client.get(SCORES, headers=mine)
    assert r.status_code == 429
    assert r.headers["Retry-After"].isdigit()
    assert int(r.headers["Retry-After"]) >= 1
    error: dict[str, Any] = r.json()["error"]
    assert error["code"] == "TooManyRequests"
    assert error["innerError"]["code"] == "429"
    assert error["innerError"]["status"] == "429"
    assert error["innerError"]["request-id"] == r.headers["request-id"]
    # an early retry is throttled again, and a write too: nothing of it is stored
    r = await client.get(SCORES, headers=mine)
    assert r.status_code == 429
    r = await client.post(SCORES, json=score(id="late"), headers=mine)
    assert r.status_code == 429
    # another application in the same tenant, and the same application in another tenant
    r = await client.get(SCORES, headers=headers(issuer, application="app-b"))
    assert r.status_code == 200
    r = await client.get(SCORES, headers=headers(issuer, tenant=OTHER_TENANT))
    assert r.status_code == 200
    r = await client.get(f"{SCORES}/late", headers=headers(issuer, application="app-b"))
    assert r.status_code == 404


async def test_control_profiles_do_not_count_against_the_per_minute_limit(
        client: httpx.AsyncClient, issuer: LocalIssuer) -> None:
    mine = headers(issuer)
    for _ in range(8):  # more than 5: control profiles are not /security detections
        r = await client.get(PROFILES, headers=mine)
        assert r.status_code == 200
    for _ in range(5):  # user security profiles count with secureScores
        r = await client.get(USERS, headers=mine)
        assert r.status_code == 200
    r = await client.get(SCORES, headers=mine)
    assert r.status_code == 429


async def test_a_bad_request_counts_too(client: httpx.AsyncClient, issuer: LocalIssuer) -> None:
    """Graph throttles before it reads the request: a 400 still used a place in the bucket."""
    mine = headers(issuer)
    for _ in range(5):
        r = await client.get(f"{SCORES}?$filter=nonsense", headers=mine)
        assert r.status_code == 400
    r = await client.get(SCORES, headers=mine)
    assert r.status_code == 429


async def test_requests_in_a_batch_are_throttled_one_by_one(
        client: httpx.AsyncClient, issuer: LocalIssuer) -> None:
    mine = headers(issuer)
    r = await client.post("/v1.0/$batch", headers=mine, json={"requests": [
        {"id": str(n), "method": "GET", "url": "/security/secureScores?$top=1"}
        for n in range(7)]})
    assert r.status_code == 200  # the batch itself is never throttled
    answers = r.json()["responses"]
    statuses = sorted(a["status"] for a in answers)
    assert statuses == [200] * 5 + [429] * 2
    throttled = [a for a in answers if a["status"] == 429]
    for answer in throttled:
        assert answer["headers"]["Retry-After"].isdigit()
        assert answer["body"]["error"]["code"] == "TooManyRequests"
