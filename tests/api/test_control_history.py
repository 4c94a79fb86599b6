"""A control profile's ``controlStateUpdates`` is bounded: the document keeps the newest entries
(``GRAPHSEC_CONTROL_HISTORY_ENTRIES``), the older ones move to the history table, and a PATCH
costs the same however long the history has grown."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from typing import Any

import httpx
import orjson
import pytest

from graphsec.config import Settings
from tests.api.test_control_profiles import URL, VENDOR, profile
from tests.conftest import OTHER_TENANT, TENANT, _client

KEPT = 5
INITIAL = {"assignedTo": None, "comment": None, "state": "Default", "updatedBy": None,
           "updatedDateTime": "2019-03-19T22:37:14.628799Z"}
"""The one entry ``profile()`` is created with."""


def bounded(settings: Settings, **env: str) -> Settings:
    return Settings.from_env({**settings.environ(), "GRAPHSEC_CONTROL_HISTORY_ENTRIES": str(KEPT),
                              **env})


@pytest.fixture
async def small(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a server whose profiles keep their newest ``KEPT`` entries."""
    async for c in _client(bounded(settings)):
        yield c


@pytest.fixture
def kept_settings(settings: Settings) -> Settings:
    return bounded(settings)


async def history(settings: Settings, entity_id: str,
                  tenant: str = TENANT) -> list[tuple[int, dict[str, Any]]]:
    """The history table's rows of one profile, as (seq, entry), in seq order."""
    sql = ("SELECT seq, entry FROM history WHERE tenant_id = {0} AND "
           "entity_set = 'secureScoreControlProfiles' AND entity_id = {1} ORDER BY seq")
    if settings.backend == "sqlite":
        with closing(sqlite3.connect(settings.sqlite_path())) as conn:
            rows = conn.execute(sql.format("?", "?"), (tenant, entity_id)).fetchall()
    else:
        import asyncpg

        conn = await asyncpg.connect(settings.database_url)
        try:
            rows = await conn.fetch(sql.format("$1", "$2"), tenant, entity_id)
        finally:
            await conn.close()
    return [(int(seq), orjson.loads(entry)) for seq, entry in rows]


async def patch(client: httpx.AsyncClient, headers: dict[str, str], comment: str,
                entity_id: str = "DLPEnabled", **extra: str) -> httpx.Response:
    return await client.patch(f"{URL}/{entity_id}", headers=headers | extra,
                              json={"comment": comment, "vendorInformation": VENDOR})


async def test_patches_beyond_the_bound_keep_the_newest_entries_in_order(
    small: httpx.AsyncClient, kept_settings: Settings, rw: dict[str, str]
) -> None:
    assert (await small.post(URL, json=profile(), headers=rw)).status_code == 201
    for i in range(KEPT + 3):
        assert (await patch(small, rw, f"patch {i}")).status_code == 204
    got = (await small.get(f"{URL}/DLPEnabled", headers=rw)).json()
    comments = [e["comment"] for e in got["controlStateUpdates"]]
    assert comments == [f"patch {i}" for i in range(3, KEPT + 3)]  # oldest first, newest last
    archived = await history(kept_settings, "DLPEnabled")
    assert [seq for seq, _ in archived] == [1, 2, 3, 4]
    assert archived[0][1] == INITIAL
    assert [e["comment"] for _, e in archived[1:]] == ["patch 0", "patch 1", "patch 2"]


async def test_a_representation_carries_the_bounded_history(
    small: httpx.AsyncClient, rw: dict[str, str]
) -> None:
    assert (await small.post(URL, json=profile(), headers=rw)).status_code == 201
    for i in range(KEPT + 1):
        r = await patch(small, rw, f"patch {i}", Prefer="return=representation")
        assert r.status_code == 200
    updates = r.json()["controlStateUpdates"]
    assert [e["comment"] for e in updates] == [f"patch {i}" for i in range(1, KEPT + 1)]


async def test_stored_document_stops_growing_at_the_bound(
    small: httpx.AsyncClient, rw: dict[str, str]
) -> None:
    assert (await small.post(URL, json=profile(), headers=rw)).status_code == 201
    sizes = []
    for i in range(KEPT + 4):
        assert (await patch(small, rw, f"patch {i:04d}")).status_code == 204
        sizes.append(len((await small.get(f"{URL}/DLPEnabled", headers=rw)).content))
    growing, steady = sizes[:KEPT - 1], sizes[KEPT - 1:]
    assert growing == sorted(set(growing))  # one more entry each time, until the bound
    assert len(set(steady)) == 1, sizes


async def test_entries_go_to_the_history_when_the_document_would_be_too_large(
    settings: Settings, rw: dict[str, str]
) -> None:
    """A long history never makes a profile unpatchable: the oldest kept entries leave the
    document first; only an entry too large on its own is refused (413, nothing changed)."""
    limited = bounded(settings, GRAPHSEC_CONTROL_HISTORY_ENTRIES="100",
                      GRAPHSEC_MAX_DOCUMENT_BYTES="16384")
    async for client in _client(limited):
        assert (await client.post(URL, json=profile(), headers=rw)).status_code == 201
        for i in range(12):
            r = await patch(client, rw, f"{i:02d}" + "x" * 3000)
            assert r.status_code == 204, r.text
        body = (await client.get(f"{URL}/DLPEnabled", headers=rw)).content
        assert len(body) < 16384
        kept = [e["comment"][:2] for e in orjson.loads(body)["controlStateUpdates"]]
        archived = [e["comment"] for _, e in await history(limited, "DLPEnabled")]
        assert 1 < len(kept) < 12
        assert archived[0] is None  # the entry the profile was created with
        assert [c[:2] for c in archived[1:]] + kept == [f"{i:02d}" for i in range(12)]

        r = await patch(client, rw, "y" * 20_000)
        assert r.status_code == 413, r.text
        assert (await client.get(f"{URL}/DLPEnabled", headers=rw)).content == body
        assert len(await history(limited, "DLPEnabled")) == len(archived)


async def test_concurrent_patches_lose_no_entry(
    small: httpx.AsyncClient, kept_settings: Settings, rw: dict[str, str]
) -> None:
    assert (await small.post(URL, json=profile(), headers=rw)).status_code == 201
    answers = await asyncio.gather(*(patch(small, rw, f"c{i}") for i in range(12)))
    assert [r.status_code for r in answers] == [204] * 12
    got = (await small.get(f"{URL}/DLPEnabled", headers=rw)).json()["controlStateUpdates"]
    archived = await history(kept_settings, "DLPEnabled")
    assert [seq for seq, _ in archived] == list(range(1, 12 + 1 - KEPT + 1))
    comments = [e["comment"] for _, e in archived] + [e["comment"] for e in got]
    assert len(got) == KEPT
    assert sorted(comments[1:]) == sorted(f"c{i}" for i in range(12))


async def test_deleting_a_profile_deletes_its_history_and_no_other(
    small: httpx.AsyncClient, kept_settings: Settings, auth: Any
) -> None:
    mine, theirs = auth(), auth(tenant=OTHER_TENANT)
    for headers in (mine, theirs):
        assert (await small.post(URL, json=profile(), headers=headers)).status_code == 201
    assert (await small.post(URL, json=profile("MFA"), headers=mine)).status_code == 201
    for i in range(KEPT + 2):
        for entity_id, headers in (("DLPEnabled", mine), ("DLPEnabled", theirs), ("MFA", mine)):
            assert (await patch(small, headers, f"p{i}", entity_id)).status_code == 204
    assert len(await history(kept_settings, "DLPEnabled")) == 3

    assert (await small.delete(f"{URL}/DLPEnabled", headers=mine)).status_code == 204
    assert await history(kept_settings, "DLPEnabled") == []
    assert len(await history(kept_settings, "MFA")) == 3
    assert len(await history(kept_settings, "DLPEnabled", OTHER_TENANT)) == 3

    # a profile created again under the same id starts a history of its own
    assert (await small.post(URL, json=profile(), headers=mine)).status_code == 201
    for i in range(KEPT):
        assert (await patch(small, mine, f"again {i}")).status_code == 204
    assert await history(kept_settings, "DLPEnabled") == [(1, INITIAL)]


@pytest.mark.parametrize(
    ("entries", "status"),
    [
        pytest.param(KEPT, 201, id="at-the-bound"),
        pytest.param(KEPT + 1, 400, id="over-the-bound"),
    ],
)
async def test_created_history_is_bounded_too(small: httpx.AsyncClient, rw: dict[str, str],
                                              entries: int, status: int) -> None:
    body = profile(controlStateUpdates=[INITIAL | {"comment": f"e{i}"} for i in range(entries)])
    r = await small.post(URL, json=body, headers=rw)
    assert r.status_code == status, r.text
    if status == 400:
        error = r.json()["error"]
        assert f"at most {KEPT}" in error["message"]
        assert error["details"][0]["target"] == "controlStateUpdates"
        assert (await small.get(f"{URL}/DLPEnabled", headers=rw)).status_code == 404
