"""Providers (206 Partial Content with ``Warning``) and chaos on a real ``graphsec serve
--config FILE --workers 2``, on both backends: what a client sees over HTTP, with the latency
measured by the server that answered and nextLinks that any worker accepts."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from graphsec.auth.keys import load_or_create
from graphsec.auth.tokens import LocalIssuer
from tests.conftest import score
from tests.support.server import READ_WRITE, RunningServer, serving

ALL_FAILING = "5d5a1bd0-0000-4000-8000-000000000005"
CHAOTIC = "6d5a1bd0-0000-4000-8000-000000000006"
SCORES = "/v1.0/security/secureScores"

CONFIG = f"""
[[providers]]                      # every tenant: Contoso's EDR refuses, after 40 ms
vendor = "Contoso"
provider = "EDR"
status = 403
latency_ms = 40

[[tenants."{ALL_FAILING}".providers]]  # this tenant: Secure Score hangs past its timeout too
vendor = "Microsoft"
provider = "SecureScore"
latency_ms = 60000
provider_timeout_ms = 30

[tenants."{CHAOTIC}".chaos]
rate = 1.0
statuses = [429]
retry_after_seconds = 2
"""

WARNING = re.compile(r'199 - "(?P<vendor>[^/"]+)/(?P<provider>[^/"]+)/(?P<status>\d+)/(?P<ms>\d+)"')


def warnings(response: httpx.Response) -> list[tuple[str, str, int, int]]:
    """The ``Warning`` elements: (vendor, provider, status, latency in ms)."""
    return [(m["vendor"], m["provider"], int(m["status"]), int(m["ms"]))
            for m in WARNING.finditer(response.headers.get("warning", ""))]


@pytest.fixture(scope="module")
def server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root: Path = tmp_path_factory.mktemp(f"providers-{backend}")
    config = root / "graphsec.toml"
    config.write_text(CONFIG)
    with serving(backend, root, "--workers", "2", "--config", str(config)) as process:
        yield process


@pytest.fixture
async def http(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=30,
                                 trust_env=False) as client:
        yield client


def auth(server: RunningServer, tenant: str) -> dict[str, str]:
    token = LocalIssuer(load_or_create(server.home)).mint(tenant, (READ_WRITE,))
    return {"Authorization": f"Bearer {token}"}


async def seed(http: httpx.AsyncClient, headers: dict[str, str]) -> None:
    """Three Microsoft/SecureScore rows (m0…m2) and two Contoso/EDR rows (c0, c1), interleaved
    in the default order (newest first: m2, c1, m1, c0, m0)."""
    rows = [("m0", 1, "Microsoft", "SecureScore"), ("c0", 2, "Contoso", "EDR"),
            ("m1", 3, "Microsoft", "SecureScore"), ("c1", 4, "Contoso", "EDR"),
            ("m2", 5, "Microsoft", "SecureScore")]
    for entity_id, day, vendor, provider in rows:
        body = score(id=entity_id, createdDateTime=f"2024-02-0{day}T00:00:00Z",
                     vendorInformation={"vendor": vendor, "provider": provider,
                                        "providerVersion": None, "subProvider": None})
        r = await http.post(SCORES, json=body, headers=headers)
        assert r.status_code == 201, r.text


@pytest.fixture
def tenant() -> str:
    return str(uuid.uuid4())


async def test_a_list_leaves_the_failing_provider_out_and_warns_with_its_latency(
        server: RunningServer, http: httpx.AsyncClient, tenant: str) -> None:
    headers = auth(server, tenant)
    await seed(http, headers)
    r = await http.get(f"{SCORES}?$count=true", headers=headers)
    assert r.status_code == 206, r.text
    [(vendor, provider, status, ms)] = warnings(r)
    assert (vendor, provider, status) == ("Contoso", "EDR", 403)
    assert ms >= 39  # measured, and at least the configured 40 ms (to the clock's resolution)
    body: dict[str, Any] = r.json()
    assert [v["id"] for v in body["value"]] == ["m2", "m1", "m0"]
    assert body["@odata.count"] == 3


async def test_count_and_paging_see_only_the_healthy_rows_on_any_worker(
        server: RunningServer, http: httpx.AsyncClient, tenant: str) -> None:
    headers = auth(server, tenant)
    await seed(http, headers)
    r = await http.get(f"{SCORES}/$count", headers=headers)
    assert (r.status_code, r.text, warnings(r)[0][:3]) == (206, "3", ("Contoso", "EDR", 403))
    seen: list[str] = []
    url = f"{SCORES}?$top=1"
    for _ in range(10):  # with two workers, the pages land on either
        page = await http.get(url, headers=headers)
        assert page.status_code == 206, page.text
        seen += [v["id"] for v in page.json()["value"]]
        if "@odata.nextLink" not in page.json():
            break
        url = page.json()["@odata.nextLink"]
    assert seen == ["m2", "m1", "m0"]


async def test_get_by_id_answers_the_failing_provider_s_status_or_warns(
        server: RunningServer, http: httpx.AsyncClient, tenant: str) -> None:
    headers = auth(server, tenant)
    await seed(http, headers)
    refused = await http.get(f"{SCORES}/c0", headers=headers)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "Authorization_RequestDenied"
    found = await http.get(f"{SCORES}/m0", headers=headers)
    assert (found.status_code, found.json()["id"]) == (206, "m0")
    assert [w[:3] for w in warnings(found)] == [("Contoso", "EDR", 403)]


async def test_every_provider_failing_is_206_with_an_empty_value(
        server: RunningServer, http: httpx.AsyncClient) -> None:
    headers = auth(server, ALL_FAILING)
    await seed(http, headers)
    r = await http.get(SCORES, headers=headers)
    assert r.status_code == 206, r.text
    assert r.json()["value"] == []
    (contoso, microsoft) = warnings(r)
    assert contoso[:3] == ("Contoso", "EDR", 403)
    assert microsoft[:3] == ("Microsoft", "SecureScore", 504)  # its 30 ms timeout, not 60 s
    assert 29 <= microsoft[3] < 60_000


async def test_chaos_answers_graph_s_429_with_an_integer_retry_after(
        server: RunningServer, http: httpx.AsyncClient) -> None:
    r = await http.get(SCORES, headers=auth(server, CHAOTIC))
    assert r.status_code == 429
    assert r.headers["retry-after"] == "2"
    error = r.json()["error"]
    assert error["code"] == "TooManyRequests"
    assert (error["innerError"]["code"], error["innerError"]["status"]) == ("429", "429")
