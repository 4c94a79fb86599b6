"""Parallel writers against the real server with two workers lose nothing.

240 PATCHes and POSTs are fired at once from four clients (separate connection pools, so both
workers answer), then every stored row is checked.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx

from tests.support.server import start_server

SCORES = "/v1.0/security/secureScores"
PROFILES = "/v1.0/security/secureScoreControlProfiles"
VENDOR = {"provider": "SecureScore", "vendor": "Microsoft"}
TENANT = "c0ffee00-0000-4000-8000-000000000001"
PATCHES_PER_SCORE = 6
SCORE_IDS = [f"s{i}" for i in range(8)]


async def _storm(base: str, token: str) -> list[tuple[str, int]]:
    headers = {"Authorization": f"Bearer {token}"}
    clients = [httpx.AsyncClient(base_url=base, headers=headers, timeout=60.0) for _ in range(4)]
    try:
        requests: list[tuple[str, str, str, dict[str, object]]] = []
        for i in range(100):  # appends to one control profile's history: each must survive
            requests.append((f"state-{i}", "PATCH", f"{PROFILES}/ctrl",
                             {"comment": f"c{i}", "state": "Reviewed", "vendorInformation": VENDOR}))
        for i in range(80):  # new entities with distinct ids
            requests.append((f"post-{i}", "POST", SCORES,
                             {"id": f"p{i}", "currentScore": float(i),
                              "createdDateTime": "2024-05-01T00:00:00Z"}))
        for i in range(10):  # the same id posted twice: one 201, one 409
            for _ in range(2):
                requests.append((f"dup-{i}", "POST", SCORES, {"id": f"d{i}", "currentScore": 1.0}))
        for sid in SCORE_IDS:  # last writer wins on one property
            for k in range(PATCHES_PER_SCORE):
                requests.append((f"lww-{sid}-{k}", "PATCH", f"{SCORES}/{sid}",
                                 {"currentScore": float(k), "maxScore": 1000.0 + k}))

        async def send(n: int, label: str, method: str, url: str,
                       body: dict[str, object]) -> tuple[str, int]:
            r = await clients[n % len(clients)].request(method, url, json=body)
            return label, r.status_code

        return await asyncio.gather(*(send(n, *req) for n, req in enumerate(requests)))
    finally:
        for c in clients:
            await c.aclose()


def test_parallel_writers_lose_nothing(database_url: str, tmp_path: Path) -> None:
    server = start_server(tmp_path / "home", "--database", database_url, "--workers", "2")
    try:
        base = f"http://127.0.0.1:{server.port}"
        token = server.token(TENANT, "SecurityEvents.ReadWrite.All", identity="storm@contoso.com")
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30.0) as http:
            assert http.post(PROFILES, json={"id": "ctrl", "rank": 1,
                                             "vendorInformation": VENDOR}).status_code == 201
            for sid in SCORE_IDS:
                assert http.post(SCORES, json={"id": sid, "currentScore": -1.0}).status_code == 201

            results = asyncio.run(_storm(base, token))
            assert len(results) >= 200
            statuses = Counter(status for _, status in results)
            assert not [s for s in statuses if s >= 500], (statuses, server.log()[-3000:])

            by_label: dict[str, list[int]] = {}
            for label, status in results:
                by_label.setdefault(label, []).append(status)
            assert all(by_label[f"state-{i}"] == [204] for i in range(100))
            assert all(by_label[f"post-{i}"] == [201] for i in range(80))
            assert all(sorted(by_label[f"dup-{i}"]) == [201, 409] for i in range(10))

            profile = http.get(f"{PROFILES}/ctrl").json()
            comments = [u["comment"] for u in profile["controlStateUpdates"]]
            assert sorted(comments) == sorted(f"c{i}" for i in range(100))  # no lost update
            assert all(u["updatedBy"] == "storm@contoso.com" for u in profile["controlStateUpdates"])

            for i in range(80):
                got = http.get(f"{SCORES}/p{i}").json()
                assert got["currentScore"] == float(i)
            for sid in SCORE_IDS:
                got = http.get(f"{SCORES}/{sid}").json()
                k = int(got["currentScore"])
                assert 0 <= k < PATCHES_PER_SCORE
                assert got["maxScore"] == 1000.0 + k  # both properties from the same writer

            listed = []
            link: str | None = f"{SCORES}?$top=37"
            while link:
                page = http.get(link).json()
                listed += [v["id"] for v in page["value"]]
                link = page.get("@odata.nextLink")
            assert len(listed) == len(set(listed)) == len(SCORE_IDS) + 80 + 10
            assert http.get(f"{SCORES}/$count").text == str(len(listed))
    finally:
        server.stop()
