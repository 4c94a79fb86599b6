"""Bodies are checked against the declared types; a refused write changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import score

URL = "/v1.0/security/secureScores"


@pytest.mark.parametrize(
    ("overrides", "target", "fragment"),
    [
        pytest.param({"currentScore": "Double"}, "currentScore", "Edm.Double", id="string-double"),
        pytest.param({"currentScore": True}, "currentScore", "Edm.Double", id="bool-double"),
        pytest.param({"activeUserCount": 2**31}, "activeUserCount", "out of range",
                     id="int32-overflow"),
        pytest.param({"licensedUserCount": -(2**31) - 1}, "licensedUserCount", "out of range",
                     id="int32-underflow"),
        pytest.param({"activeUserCount": 1.5}, "activeUserCount", "Edm.Int32", id="fraction-int"),
        pytest.param({"createdDateTime": "yesterday"}, "createdDateTime", "Edm.DateTimeOffset",
                     id="bad-datetime"),
        pytest.param({"createdDateTime": "2024-02-30T00:00:00Z"}, "createdDateTime",
                     "DateTimeOffset", id="no-such-day"),
        pytest.param({"createdDateTime": "2024-02-01T00:00:00"}, "createdDateTime",
                     "offset", id="no-offset"),
        pytest.param({"createdDateTime": "2024-02-01T00:00:00.123456789Z"}, "createdDateTime",
                     "7 fractional digits", id="too-precise"),
        pytest.param({"enabledServices": "HasExchange"}, "enabledServices", "array",
                     id="scalar-for-collection"),
        pytest.param({"enabledServices": [1]}, "enabledServices[0]", "Edm.String",
                     id="number-in-string-collection"),
        pytest.param({"enabledServices": None}, "enabledServices", "cannot be null",
                     id="null-collection"),
        pytest.param({"controlScores": {"score": 1}}, "controlScores", "array",
                     id="object-for-collection"),
        pytest.param({"controlScores": [{"score": "high"}]}, "controlScores[0].score",
                     "Edm.Double", id="nested-double"),
        pytest.param({"controlScores": [None]}, "controlScores[0]", "null", id="null-item"),
        pytest.param({"vendorInformation": {"provider": "x", "colour": "red"}},
                     "vendorInformation.colour", "not a property", id="closed-type-extra"),
        pytest.param({"vendorInformation": "Microsoft"}, "vendorInformation", "object",
                     id="string-for-complex"),
        pytest.param({"azureTenantId": None}, "azureTenantId", "cannot be null",
                     id="null-non-nullable"),
        pytest.param({"currentscore": 1.0}, "currentscore", "currentScore",
                     id="unknown-property-with-hint"),
        pytest.param({"tenantNote": "x"}, "tenantNote", "does not exist", id="unknown-property"),
        pytest.param({"@odata.type": "#microsoft.graph.alert"}, "@odata.type",
                     "microsoft.graph.secureScore", id="wrong-odata-type"),
        pytest.param({"controlScores": [{"@odata.type": "microsoft.graph.alert"}]},
                     "controlScores[0].@odata.type", "controlScore", id="wrong-nested-type"),
    ],
)
async def test_invalid_create_is_400_naming_the_property(
    client: httpx.AsyncClient, rw: dict[str, str], overrides: dict[str, Any], target: str,
    fragment: str,
) -> None:
    r = await client.post(URL, json=score(**overrides), headers=rw)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "BadRequest"
    assert target in error["message"]
    assert fragment in error["message"]
    assert [d["target"] for d in error["details"]] == [target]
    assert (await client.get(URL, headers=rw)).json()["value"] == []


async def test_open_complex_types_keep_extras(client: httpx.AsyncClient,
                                              rw: dict[str, str]) -> None:
    body = score(
        id="open",
        controlScores=[{"controlName": "AdminMFA", "score": 9, "implementationStatus": "on",
                        "scoreInPercentage": 90.5, "count": "4", "lastSynced": "2024-01-01"}],
        averageComparativeScores=[{"basis": "TotalSeats", "averageScore": 1,
                                   "SeatSizeRangeLowerValue": "1", "deviceScore": 2.5}],
    )
    assert (await client.post(URL, json=body, headers=rw)).status_code == 201
    got = (await client.get(f"{URL}/open", headers=rw)).json()
    assert got["controlScores"] == [{
        "controlCategory": None, "controlName": "AdminMFA", "count": "4", "description": None,
        "implementationStatus": "on", "lastSynced": "2024-01-01", "score": 9.0,
        "scoreInPercentage": 90.5,
    }]
    assert got["averageComparativeScores"][0]["SeatSizeRangeLowerValue"] == "1"
    assert got["averageComparativeScores"][0]["averageScore"] == 1.0


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        pytest.param("2016-12-31T23:56:52.9286964+00:00", "2016-12-31T23:56:52.9286964Z",
                     id="seven-digits"),
        pytest.param("2017-01-01T00:02:24.9669049+03:00", "2016-12-31T21:02:24.9669049Z",
                     id="offset-to-utc"),
        pytest.param("2019-03-19T15:21:00Z", "2019-03-19T15:21:00Z", id="no-fraction"),
        pytest.param("2019-03-19T15:21:00.100Z", "2019-03-19T15:21:00.100Z",
                     id="trailing-zeros-kept"),
        pytest.param("2019-03-19t15:21z", "2019-03-19T15:21:00Z", id="lowercase-no-seconds"),
    ],
)
async def test_datetimes_round_trip_with_their_precision(
    client: httpx.AsyncClient, rw: dict[str, str], sent: str, stored: str
) -> None:
    r = await client.post(URL, json=score(id="dt", createdDateTime=sent), headers=rw)
    assert r.status_code == 201
    assert r.json()["createdDateTime"] == stored
    got = await client.get(f"{URL}/dt", headers=rw)
    assert got.json()["createdDateTime"] == stored


async def test_numbers_are_json_numbers_and_doubles_keep_a_fraction(
    client: httpx.AsyncClient, rw: dict[str, str]
) -> None:
    r = await client.post(URL, json=score(id="n", currentScore=387, activeUserCount=0),
                          headers=rw)
    assert b'"currentScore":387.0' in r.content
    assert b'"activeUserCount":0' in r.content


async def test_duplicate_id_is_409_and_keeps_the_first(client: httpx.AsyncClient,
                                                       rw: dict[str, str]) -> None:
    assert (await client.post(URL, json=score(id="dup", currentScore=1),
                              headers=rw)).status_code == 201
    r = await client.post(URL, json=score(id="dup", currentScore=2), headers=rw)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "Conflict"
    assert (await client.get(f"{URL}/dup", headers=rw)).json()["currentScore"] == 1.0


@pytest.mark.parametrize("bad_id", [pytest.param("", id="empty"), pytest.param("  ", id="blank"),
                                    pytest.param("a\nb", id="control"),
                                    pytest.param("x" * 513, id="long"),
                                    pytest.param(5, id="number")])
async def test_invalid_ids_are_refused(client: httpx.AsyncClient, rw: dict[str, str],
                                       bad_id: object) -> None:
    r = await client.post(URL, json=score(id=bad_id), headers=rw)
    assert r.status_code == 400
    assert "id" in r.json()["error"]["message"]


async def test_ids_with_dots_slashes_and_quotes_are_addressable(
    client: httpx.AsyncClient, rw: dict[str, str]
) -> None:
    for entity_id in ("11770.MDA_Google", "a/b", "it's"):
        assert (await client.post(URL, json=score(id=entity_id), headers=rw)).status_code == 201
    assert (await client.get(f"{URL}/11770.MDA_Google", headers=rw)).status_code == 200
    assert (await client.get(f"{URL}/a%2Fb", headers=rw)).json()["id"] == "a/b"
    assert (await client.get(f"{URL}('it''s')", headers=rw)).json()["id"] == "it's"
