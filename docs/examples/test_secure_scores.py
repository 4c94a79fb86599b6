"""A test module that uses graphsec's pytest plugin (pip install 'graphsec[sdk]' pytest-asyncio)."""

import pytest

SCORE = {
    "id": "6babcaad-604b-40ac-a9d7-9fd97c0b779f_2026-11-30",
    "azureTenantId": "6babcaad-604b-40ac-a9d7-9fd97c0b779f",
    "createdDateTime": "2026-11-30T00:00:00Z",
    "currentScore": 387.0,
    "maxScore": 697.0,
    "activeUserCount": 15,
    "licensedUserCount": 100,
    "enabledServices": ["HasExchange"],
    "averageComparativeScores": [],
    "controlScores": [],
    "vendorInformation": {"provider": "SecureScore", "vendor": "Microsoft"},
}


def test_sample_data_for_a_dashboard(graphsec):
    # the sample generator: same seed, same tenants and scores
    [tenant] = graphsec.seed(tenants=1, days=7, seed=42)
    counts = {t["tenantId"]: t for t in graphsec.tenants()}
    assert counts[tenant]["secureScores"] == 7


@pytest.mark.asyncio
async def test_my_code_reads_what_was_loaded(graphsec, graph_client):
    graphsec.load({"secureScores": [SCORE]}, tenant=SCORE["azureTenantId"])
    client = graph_client(tenant=SCORE["azureTenantId"], roles=["SecurityEvents.Read.All"])
    page = await client.security.secure_scores.get()
    assert [s.current_score for s in page.value] == [387.0]


@pytest.mark.graphsec(reset=False)  # keeps what the test before stored
@pytest.mark.asyncio
async def test_sees_the_previous_tests_data_when_asked(graph_client):
    page = await graph_client(tenant=SCORE["azureTenantId"]).security.secure_scores.get()
    assert [s.current_score for s in page.value] == [387.0]


@pytest.mark.asyncio
async def test_each_test_starts_from_an_empty_store(graph_client):
    page = await graph_client(tenant=SCORE["azureTenantId"]).security.secure_scores.get()
    assert page.value == []
