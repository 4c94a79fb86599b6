"""Tenant isolation, proven on every entity set on every version that serves it.

The cases are generated from ``graphsec.schema.security.ENTITY_SETS``, so a new entity set is
covered on arrival; ``SAMPLES`` gives each set a valid create and PATCH body, and
``test_every_entity_set_has_a_sample`` fails until a new set has one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from graphsec.api.routing import VERSIONS
from graphsec.schema.security import ENTITY_SETS
from graphsec.schema.types import EntitySet
from tests.conftest import OTHER_TENANT, TENANT, Headers

VENDOR = {"provider": "SecureScore", "vendor": "Microsoft"}


@dataclass(frozen=True)
class Sample:
    """Bodies that an entity set accepts: ``create`` (the id is added per test) and ``patch``."""

    create: dict[str, Any]
    patch: dict[str, Any]


SAMPLES: dict[str, Sample] = {
    "secureScores": Sample(create={"currentScore": 1.0, "maxScore": 2.0},
                           patch={"currentScore": 2.0}),
    "secureScoreControlProfiles": Sample(create={"title": "Apply DLP policies", "rank": 1},
                                         patch={"state": "Ignored", "vendorInformation": VENDOR}),
    "userSecurityProfiles": Sample(create={"displayName": "Ada", "tags": ["vip"]},
                                   patch={"tags": ["finance"]}),
}

CASES = [
    pytest.param(entity_set, version, id=f"{version}-{entity_set.name}")
    for entity_set in ENTITY_SETS
    for version in VERSIONS
    if version in entity_set.versions
]


def url_of(entity_set: EntitySet, version: str) -> str:
    return f"/{version}/security/{entity_set.name}"


async def create(client: httpx.AsyncClient, url: str, headers: dict[str, str],
                 entity_set: EntitySet, entity_id: str) -> dict[str, Any]:
    body = {**SAMPLES[entity_set.name].create, "id": entity_id}
    r = await client.post(url, json=body, headers=headers)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def ids_and_tenants(r: httpx.Response) -> list[tuple[str, str]]:
    assert r.status_code == 200, r.text
    return [(v["id"], v["azureTenantId"]) for v in r.json()["value"]]


def test_every_entity_set_has_a_sample() -> None:
    assert sorted(SAMPLES) == sorted(es.name for es in ENTITY_SETS)


@pytest.mark.parametrize(("entity_set", "version"), CASES)
async def test_another_tenants_id_is_404_for_get_patch_and_delete(
    client: httpx.AsyncClient, auth: Headers, entity_set: EntitySet, version: str
) -> None:
    url, mine, theirs = url_of(entity_set, version), auth(), auth(tenant=OTHER_TENANT)
    await create(client, url, mine, entity_set, "mine")
    before = (await client.get(f"{url}/mine", headers=mine)).json()
    patch = SAMPLES[entity_set.name].patch
    assert (await client.get(f"{url}/mine", headers=theirs)).status_code == 404
    assert (await client.patch(f"{url}/mine", json=patch, headers=theirs)).status_code == 404
    if entity_set.collection_patch:
        r = await client.patch(url, json={**patch, "id": "mine"}, headers=theirs)
        assert r.status_code == 404
    assert (await client.delete(f"{url}/mine", headers=theirs)).status_code == 404
    assert (await client.get(f"{url}/mine", headers=mine)).json() == before
    # the PATCH body is valid: the owner's succeeds
    assert (await client.patch(f"{url}/mine", json=patch, headers=mine)).status_code in (200, 204)


@pytest.mark.parametrize(("entity_set", "version"), CASES)
async def test_list_count_and_filter_never_show_another_tenants_entity(
    client: httpx.AsyncClient, auth: Headers, entity_set: EntitySet, version: str
) -> None:
    url, mine, theirs = url_of(entity_set, version), auth(), auth(tenant=OTHER_TENANT)
    await create(client, url, mine, entity_set, "a")
    await create(client, url, mine, entity_set, "b")
    await create(client, url, theirs, entity_set, "a")  # the same id, another entity
    listed = await client.get(f"{url}?$count=true", headers=theirs)
    assert ids_and_tenants(listed) == [("a", OTHER_TENANT)]
    assert listed.json()["@odata.count"] == 1
    assert (await client.get(f"{url}/$count", headers=theirs)).text == "1"
    filters: dict[str, list[tuple[str, str]]] = {
        "id eq 'b'": [], f"azureTenantId eq '{TENANT}'": [],
        "id eq 'a' or id eq 'b'": [("a", OTHER_TENANT)],
    }
    for condition, expected in filters.items():
        found = await client.get(f"{url}?$filter={condition}", headers=theirs)
        assert ids_and_tenants(found) == expected, condition
        counted = await client.get(f"{url}/$count?$filter={condition}", headers=theirs)
        assert counted.text == str(len(expected)), condition
    assert sorted(ids_and_tenants(await client.get(url, headers=mine))) == [("a", TENANT),
                                                                            ("b", TENANT)]


@pytest.mark.parametrize(("entity_set", "version"), CASES)
async def test_a_skiptoken_of_one_tenant_is_refused_for_another(
    client: httpx.AsyncClient, auth: Headers, entity_set: EntitySet, version: str
) -> None:
    url, mine, theirs = url_of(entity_set, version), auth(), auth(tenant=OTHER_TENANT)
    for entity_id in ("a", "b"):
        await create(client, url, mine, entity_set, entity_id)
        await create(client, url, theirs, entity_set, entity_id)
    link = (await client.get(f"{url}?$top=1", headers=mine)).json()["@odata.nextLink"]
    refused = await client.get(link, headers=theirs)
    assert refused.status_code == 400, refused.text
    assert "tenant" in refused.json()["error"]["message"]
    assert ids_and_tenants(await client.get(link, headers=mine))[0][1] == TENANT


@pytest.mark.parametrize(("entity_set", "version"), CASES)
async def test_a_body_naming_another_tenant_is_403(
    client: httpx.AsyncClient, auth: Headers, entity_set: EntitySet, version: str
) -> None:
    url, mine, theirs = url_of(entity_set, version), auth(), auth(tenant=OTHER_TENANT)
    body = {**SAMPLES[entity_set.name].create, "id": "x", "azureTenantId": OTHER_TENANT}
    posted = await client.post(url, json=body, headers=mine)
    assert posted.status_code == 403, posted.text
    assert OTHER_TENANT in posted.json()["error"]["message"]
    await create(client, url, mine, entity_set, "mine")
    before = (await client.get(f"{url}/mine", headers=mine)).json()
    patch = {**SAMPLES[entity_set.name].patch, "azureTenantId": OTHER_TENANT}
    patched = await client.patch(f"{url}/mine", json=patch, headers=mine)
    assert patched.status_code == 403, patched.text
    assert (await client.get(f"{url}/mine", headers=mine)).json() == before
    assert (await client.get(f"{url}/$count", headers=mine)).text == "1"
    assert (await client.get(f"{url}/$count", headers=theirs)).text == "0"
