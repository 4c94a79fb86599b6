"""A crash in the middle of a write storm loses no acknowledged write and leaves nothing half-written.

The server (two workers) is killed with SIGKILL, process group and all, while clients are
creating and updating entities; it is started again on the same home and database, and every
write it had answered with 2xx must be there, whole.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.server import start_server

SCORES = "/v1.0/security/secureScores"
TENANT = "dead0000-0000-4000-8000-00000000beef"
WRITERS = 8


def body(i: int) -> dict[str, object]:
    return {"id": f"w{i}", "currentScore": float(i), "maxScore": float(i) * 2,
            "enabledServices": [f"svc{i}"] * 3,
            "controlScores": [{"controlName": f"c{i}-{k}", "score": float(k)} for k in range(5)],
            "createdDateTime": "2024-06-01T00:00:00Z"}


async def _storm(base: str, token: str, acked: dict[str, float], stop: threading.Event) -> None:
    async def writer(n: int) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=5.0,
                                     headers={"Authorization": f"Bearer {token}"}) as c:
            i = n
            while not stop.is_set():
                try:
                    r = await c.post(SCORES, json=body(i))
                    if r.status_code == 201:
                        acked[f"w{i}"] = float(i)
                        p = await c.patch(f"{SCORES}/w{i}", json={"currentScore": -float(i)})
                        if p.status_code == 200:
                            acked[f"w{i}"] = -float(i)
                except httpx.TransportError:
                    return  # the server is gone
                i += WRITERS

    await asyncio.gather(*(writer(n) for n in range(WRITERS)))


def test_sigkill_mid_storm_keeps_every_acknowledged_write(database_url: str,
                                                          tmp_path: Path) -> None:
    home = tmp_path / "home"
    server = start_server(home, "--database", database_url, "--workers", "2")
    base = f"http://127.0.0.1:{server.port}"
    token = server.token(TENANT, "SecurityEvents.ReadWrite.All")
    acked: dict[str, float] = {}
    stop = threading.Event()
    storm = threading.Thread(target=lambda: asyncio.run(_storm(base, token, acked, stop)))
    storm.start()
    try:
        deadline = time.monotonic() + 10
        while len(acked) < 150 and time.monotonic() < deadline:
            time.sleep(0.02)
        server.kill()
    finally:
        stop.set()
        storm.join(timeout=30)
        server.stop()
    assert len(acked) >= 150, f"the storm made too few writes before the kill: {len(acked)}"

    again = start_server(home, "--database", database_url, port=server.port)
    try:
        with httpx.Client(base_url=base, timeout=30,
                          headers={"Authorization": f"Bearer {token}"}) as http:
            stored: dict[str, dict[str, Any]] = {}
            link: str | None = f"{SCORES}?$top=500"
            while link:
                page = http.get(link)
                assert page.status_code == 200
                stored.update({v["id"]: v for v in page.json()["value"]})
                link = page.json().get("@odata.nextLink")
    finally:
        again.stop()

    missing = [k for k in acked if k not in stored]
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"
    for entity_id, value in acked.items():
        # the acknowledged state, or a later one whose answer the crash swallowed
        assert stored[entity_id]["currentScore"] in (value, -abs(value))
    for entity_id, entity in stored.items():  # nothing half-written
        i = int(entity_id[1:])
        expected = body(i)
        assert entity["currentScore"] in (float(i), -float(i))
        assert entity["enabledServices"] == expected["enabledServices"]
        assert [c["controlName"] for c in entity["controlScores"]] == [
            f"c{i}-{k}" for k in range(5)]
        assert entity["maxScore"] == float(i) * 2
