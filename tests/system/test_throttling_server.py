"""Throttling with Graph's own limits on a real ``graphsec serve --throttle --workers 2``, on
both backends: the limits hold across the two workers (the state is in the database), another
tenant and another application are served meanwhile, the fifth concurrent request is refused
while four run, requests inside a ``$batch`` are throttled one by one within its 200, and
msgraph-sdk's retry handler waits out ``Retry-After`` and succeeds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kiota_abstractions.authentication import BaseBearerTokenAuthenticationProvider
from msgraph import GraphServiceClient
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_request_adapter import options as graph_middleware_options
from msgraph_core import GraphClientFactory

from graphsec.auth.keys import load_or_create
from graphsec.auth.tokens import LocalIssuer
from tests.sdk.conftest import StaticToken
from tests.support.server import READ_WRITE, RunningServer, serving

BUSY, QUIET, SLOW, SDK, BATCHED = (f"{n}d5a1bd0-0000-4000-8000-00000000000{n}"
                                   for n in range(4, 9))
SCORES = "/v1.0/security/secureScores"

CONFIG = f"""
[throttling]
enabled = true                       # what --throttle sets; Graph's limits by default
global_per_ten_seconds = 200         # per application: small enough to wait out in a test

[tenants."{SLOW}".chaos]
latency_ms = [1500, 1500]            # every request of this tenant runs for 1.5 s

[tenants."{BATCHED}".throttling]
per_minute = 5
concurrent = 50                      # the 7 parallel requests of a batch meet the minute's limit only
"""


class Server:
    def __init__(self, process: RunningServer) -> None:
        self.process = process
        self.issuer = LocalIssuer(load_or_create(process.home))
        self.url = f"http://127.0.0.1:{process.port}"

    def auth(self, tenant: str, application: str = "reporting") -> dict[str, str]:
        token = self.issuer.mint(tenant, (READ_WRITE,), application=application)
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root: Path = tmp_path_factory.mktemp(f"throttle-{backend}")
    config = root / "graphsec.toml"
    config.write_text(CONFIG)
    with serving(backend, root, "--workers", "2", "--throttle", "--config",
                 str(config)) as process:
        yield Server(process)


def test_the_151st_request_in_a_minute_is_429_while_others_are_served(server: Server) -> None:
    busy = server.auth(BUSY)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        started = time.monotonic()
        statuses = [http.get(f"{SCORES}?$top=1", headers=busy).status_code for _ in range(150)]
        assert statuses == [200] * 150  # spread over both workers, counted once
        refused = http.get(f"{SCORES}?$top=1", headers=busy)
        assert refused.status_code == 429
        retry_after = int(refused.headers["Retry-After"])
        # the minute's window closes a minute after the first request
        assert 60 - (time.monotonic() - started) - 1 <= retry_after <= 60
        error = refused.json()["error"]
        assert error["code"] == "TooManyRequests"
        assert error["innerError"]["status"] == "429"

        assert http.get(SCORES, headers=server.auth(QUIET)).status_code == 200  # another tenant
        other_app = server.auth(BUSY, application="dashboard")
        assert http.get(SCORES, headers=other_app).status_code == 200  # another application

        early = http.get(f"{SCORES}?$top=1", headers=busy)  # before Retry-After: punished
        assert early.status_code == 429
        # waiting out a whole minute here would cost CI two; Retry-After honoured is shown by
        # the SDK test below (a 10 s window) and by tests/pressure/test_throttle_state.py


async def test_the_fifth_concurrent_request_is_429_while_four_run(server: Server) -> None:
    slow = server.auth(SLOW)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        async def one(delay: float) -> tuple[int, float]:
            await asyncio.sleep(delay)
            started = time.monotonic()
            r = await http.get(f"{SCORES}?$top=1", headers=slow)
            return r.status_code, time.monotonic() - started

        # four at once, a fifth while they run (each runs 1.5 s: its chaos latency)
        results = await asyncio.gather(*(one(0) for _ in range(4)), one(0.5))
        assert [status for status, _ in results[:4]] == [200] * 4
        status, took = results[4]
        assert status == 429
        assert took < 1.0  # refused at once, not after waiting for a place
        r = await http.get(f"{SCORES}?$top=1", headers=slow)  # the four are over: a place
        assert r.status_code == 200


async def test_the_sdk_retry_handler_waits_out_retry_after_and_succeeds(server: Server) -> None:
    token = server.issuer.mint(SDK, (READ_WRITE,), application="sdk-app")
    seen: list[tuple[int, str | None]] = []

    class Recording(httpx.AsyncHTTPTransport):
        """Below the SDK's middleware: sees every attempt, not only the last."""

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await super().handle_async_request(request)
            seen.append((response.status_code, request.headers.get("Retry-Attempt")))
            return response

    tokens = [server.issuer.mint(f"{n}0000000-0000-4000-8000-000000000000", (READ_WRITE,),
                                 application="sdk-app") for n in range(1, 10)]
    with httpx.Client(base_url=server.url, timeout=30) as http:
        # the application's global window (200 in 10 s, across tenants) is used up; nine
        # tenants, so that no tenant's 150 a minute is reached first
        for n in range(250):
            r = http.get(f"{SCORES}?$top=1",
                         headers={"Authorization": f"Bearer {tokens[n % 9]}"})
            if r.status_code == 429:
                break
            assert r.status_code == 200, (n, r.text)
        else:
            raise AssertionError("200 requests of one application in 10 s were not throttled")

    transport = Recording()
    http_client = httpx.AsyncClient(transport=transport, timeout=30.0, trust_env=False)
    http_client = GraphClientFactory.create_with_default_middleware(
        client=http_client, options=graph_middleware_options)
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(StaticToken(token)),
                                  client=http_client)
    adapter.base_url = server.process.base_url("v1.0")
    client = GraphServiceClient(request_adapter=adapter)
    try:
        started = time.monotonic()
        page: Any = await client.security.secure_scores.get()
        took = time.monotonic() - started
    finally:
        await http_client.aclose()
        await transport.aclose()
    assert page is not None
    assert page.value == []
    assert seen[0][0] == 429
    assert seen[-1] == (200, str(len(seen) - 1))  # retried, with kiota's Retry-Attempt header
    assert took >= 1.0  # it waited out Retry-After (an integer ≥ 1)
    assert took < 15


def test_requests_of_a_batch_are_throttled_inside_its_200(server: Server) -> None:
    """Each request of a ``$batch`` counts on its own; the batch itself is never throttled."""
    with httpx.Client(base_url=server.url, timeout=30) as http:
        r = http.post("/v1.0/$batch", headers=server.auth(BATCHED), json={"requests": [
            {"id": str(n), "method": "GET", "url": "/security/secureScores?$top=1"}
            for n in range(7)]})
    assert r.status_code == 200
    answers = r.json()["responses"]
    assert sorted(a["status"] for a in answers) == [200] * 5 + [429] * 2
    for answer in answers:
        if answer["status"] == 429:
            assert int(answer["headers"]["Retry-After"]) >= 1
            assert answer["body"]["error"]["code"] == "TooManyRequests"
