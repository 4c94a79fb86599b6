"""Export, reset and import through the admin API: the NDJSON round trip, idempotence, and
what an invalid line does (docs/admin.md). On both backends, in process."""

from __future__ import annotations

import asyncio
from datetime import date

import httpx
import orjson
import pytest

from graphsec.config import Settings
from graphsec.seeding import SeedPlan, seed
from tests.admin.conftest import NDJSON, lines, ndjson
from tests.conftest import OTHER_TENANT, TENANT, Headers, score

HEADER = {"graphsec": "export", "version": 1}


async def _export(client: httpx.AsyncClient, operator: dict[str, str], query: str = "") -> bytes:
    r = await client.get(f"/_graphsec/export{query}", headers=operator)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/x-ndjson"
    assert "content-length" not in r.headers  # streamed
    return r.content


async def _import(client: httpx.AsyncClient, operator: dict[str, str],
                  body: bytes) -> httpx.Response:
    return await client.post("/_graphsec/import", headers={**operator, **NDJSON}, content=body)


async def test_a_seeded_10k_store_round_trips_byte_for_byte(
        client: httpx.AsyncClient, operator: dict[str, str], settings: Settings) -> None:
    report = await asyncio.to_thread(seed, settings.database_url,
                                     SeedPlan(10, 1000, 20, 5, 7, date(2026, 11, 1)), 1)
    assert report.secure_scores == 10_000
    first = await _export(client, operator)
    assert len(first.splitlines()) == 1 + 10 * (1000 + 20 + 5)
    assert await _export(client, operator) == first  # deterministic
    r = await client.post("/_graphsec/reset", headers=operator)
    assert r.json()["deleted"]["secureScores"] == 10_000
    assert await _export(client, operator) == orjson.dumps(HEADER) + b"\n"
    r = await _import(client, operator, first)
    assert r.status_code == 200, r.text
    assert r.json() == {"imported": 10 * (1000 + 20 + 5)}
    assert await _export(client, operator) == first


async def test_importing_twice_leaves_one_copy(client: httpx.AsyncClient, auth: Headers,
                                               operator: dict[str, str]) -> None:
    for tenant in (TENANT, OTHER_TENANT):
        await client.post("/v1.0/security/secureScores", json=score(), headers=auth(tenant=tenant))
    export = await _export(client, operator)
    for _ in range(2):
        assert (await _import(client, operator, export)).json() == {"imported": 2}
    counts = (await client.get("/_graphsec/tenants", headers=operator)).json()["value"]
    assert [c["secureScores"] for c in counts] == [1, 1]
    assert await _export(client, operator) == export


async def test_an_import_replaces_the_stored_entity(client: httpx.AsyncClient, auth: Headers,
                                                    operator: dict[str, str]) -> None:
    created = (await client.post("/v1.0/security/secureScores", json=score(currentScore=1.0),
                                 headers=auth())).json()
    export = await _export(client, operator)
    r = await client.patch(f"/v1.0/security/secureScores/{created['id']}", headers=auth(),
                           json={"currentScore": 2.0})
    assert r.status_code in (200, 204)
    await _import(client, operator, export)
    r = await client.get(f"/v1.0/security/secureScores/{created['id']}", headers=auth())
    assert r.json()["currentScore"] == 1.0


async def test_export_of_one_tenant(client: httpx.AsyncClient, auth: Headers,
                                    operator: dict[str, str]) -> None:
    for tenant in (TENANT, OTHER_TENANT):
        await client.post("/v1.0/security/secureScores", json=score(), headers=auth(tenant=tenant))
    found = lines(await _export(client, operator, f"?tenant={OTHER_TENANT}"))
    assert found[0] == HEADER
    assert [line["tenant"] for line in found[1:]] == [OTHER_TENANT]
    assert found[1]["entitySet"] == "secureScores"
    assert found[1]["entity"]["azureTenantId"] == OTHER_TENANT  # type: ignore[index]


@pytest.fixture
def settings_short_history(settings: Settings) -> Settings:
    return Settings.from_env({**settings.environ(), "GRAPHSEC_ALLOWED_HOSTS": "graph.test",
                              "GRAPHSEC_CONTROL_HISTORY_ENTRIES": "1"})


async def test_control_profile_history_round_trips(
        settings_short_history: Settings, operator: dict[str, str], auth: Headers) -> None:
    from graphsec.app import create_app

    app = create_app(settings_short_history)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://graph.test") as client:
        profile = {"id": "AdminMFA", "controlCategory": "Identity", "title": "MFA",
                   "maxScore": 10.0}
        r = await client.post("/v1.0/security/secureScoreControlProfiles", json=profile,
                              headers=auth())
        assert r.status_code == 201, r.text
        for state in ("Ignored", "Default", "ThirdParty"):
            r = await client.patch("/v1.0/security/secureScoreControlProfiles/AdminMFA",
                                   headers=auth(), json={"state": state,
                                                         "vendorInformation": {
                                                             "provider": "SecureScore",
                                                             "vendor": "Microsoft"}})
            assert r.status_code in (200, 204), r.text
        export = await _export(client, operator)
        line = lines(export)[1]
        assert len(line["history"]) == 2  # type: ignore[arg-type]
        assert len(line["entity"]["controlStateUpdates"]) == 1  # type: ignore[index]
        await client.post("/_graphsec/reset", headers=operator)
        assert (await _import(client, operator, export)).status_code == 200
        assert await _export(client, operator) == export
        await _import(client, operator, export)  # the history is replaced, not appended to
        assert await _export(client, operator) == export
    await app.resource.store.close()


def _line(**overrides: object) -> dict[str, object]:
    entity = {**score(), "id": "s1", "azureTenantId": TENANT}
    out: dict[str, object] = {"tenant": TENANT, "entitySet": "secureScores", "id": "s1",
                              "entity": entity}
    out.update(overrides)
    return out


@pytest.mark.parametrize(("bad", "says"), [
    pytest.param(b"{not json", "not valid JSON", id="not-json"),
    pytest.param(b"[1, 2]", "not a JSON object", id="not-an-object"),
    pytest.param(orjson.dumps(_line(entitySet="alerts")), "'entitySet' 'alerts'",
                 id="unknown-entity-set"),
    pytest.param(orjson.dumps(_line(tenant="contoso")), "'tenant' must be a tenant id",
                 id="bad-tenant"),
    pytest.param(orjson.dumps(_line(id="s2")), "is not the line's id", id="id-mismatch"),
    pytest.param(orjson.dumps(_line(id="")), "'id' must be", id="blank-id"),
    pytest.param(orjson.dumps(_line(entity={**score(), "id": "s1", "currentScore": "high"})),
                 "currentScore", id="fails-the-schema"),
    pytest.param(orjson.dumps(_line(entity={**score(), "id": "s1",
                                            "azureTenantId": OTHER_TENANT})),
                 "azureTenantId", id="another-tenants-entity"),
    pytest.param(orjson.dumps(_line(extra=1)), "unknown member 'extra'", id="unknown-member"),
    pytest.param(orjson.dumps(_line(history=[1])), "'history' must be", id="bad-history"),
    pytest.param(b'{"graphsec":"export","version":2}', "unknown header", id="newer-format"),
])
async def test_an_invalid_line_is_named_and_nothing_of_its_batch_stored(
        client: httpx.AsyncClient, operator: dict[str, str], bad: bytes, says: str) -> None:
    body = ndjson(HEADER, _line(id="ok", entity={**score(), "id": "ok"})) + bad + b"\n"
    r = await _import(client, operator, body)
    assert r.status_code == 400, r.text
    message = r.json()["error"]["message"]
    assert message.startswith("Line 3: ")
    assert says in message
    assert "nothing was stored" in message
    assert (await client.get("/_graphsec/tenants", headers=operator)).json() == {"value": []}


async def test_a_failed_import_keeps_the_batches_before_it(settings: Settings) -> None:
    from graphsec.resources.state import Importer, ImportFailed, import_lines
    from graphsec.schema.limits import Limits
    from graphsec.schema.security import ENTITY_SETS
    from graphsec.storage.state import open_state

    state = open_state(settings.database_url, ENTITY_SETS)
    good = [_line(id=f"s{n}", entity={**score(), "id": f"s{n}"}) for n in range(4)]
    body = ndjson(HEADER, *good) + b"oops\n"

    async def chunks() -> object:
        for n in range(0, len(body), 7):  # lines split across chunks anywhere
            yield body[n:n + 7]

    importer = Importer(state, ENTITY_SETS, Limits(), batch_lines=2)
    with pytest.raises(ImportFailed) as failed:
        await import_lines(importer, chunks(), 1 << 20)  # type: ignore[arg-type]
    assert str(failed.value).startswith("Line 6: not valid JSON")
    assert "Nothing of lines 5–6 was stored; lines 1–4 were stored" in str(failed.value)
    counts = await state.counts()
    assert counts[TENANT]["secureScores"] == 3  # lines 2–4
    await state.close()


async def test_an_over_long_line_is_refused(client: httpx.AsyncClient, operator: dict[str, str],
                                            settings: Settings) -> None:
    cap = 16 * settings.max_document_bytes
    r = await _import(client, operator, b'{"x":"' + b"a" * (cap + 10))
    assert r.status_code == 400
    assert "longer than" in r.json()["error"]["message"]


async def test_import_needs_ndjson(client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    r = await client.post("/_graphsec/import", headers={**operator,
                                                        "Content-Type": "application/json"},
                          content=ndjson(HEADER))
    assert r.status_code == 415


async def test_an_empty_import_imports_nothing(client: httpx.AsyncClient,
                                               operator: dict[str, str]) -> None:
    r = await _import(client, operator, b"")
    assert r.json() == {"imported": 0}
