"""The runtime behaviour changed through the admin API reaches every worker of a real
``graphsec serve --workers 2`` within a couple of seconds, without a restart."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from graphsec.auth.operator import load_or_create_operator_key
from tests.support.server import READ, serving

TENANT = "1d5a1bd0-0000-4000-8000-000000000001"


def _statuses(client: httpx.Client, token: str, n: int = 16) -> list[int]:
    # new connections each time, so that both workers are asked
    return [httpx.get(f"{client.base_url}v1.0/security/secureScores",
                      headers={"Authorization": f"Bearer {token}", "Connection": "close"}
                      ).status_code for _ in range(n)]


def _until(check: object, seconds: float = 5.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if check():  # type: ignore[operator]
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"not within {seconds} s")


def test_chaos_turned_on_and_off_reaches_both_workers(backend: str, tmp_path: Path) -> None:
    with serving(backend, tmp_path, "--workers", "2") as server:
        token = server.token(TENANT, READ)
        key = load_or_create_operator_key(server.home)
        operator = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}/", timeout=10) as client:
            assert set(_statuses(client, token)) == {200}
            r = client.put("/_graphsec/behaviour", headers=operator,
                           json={"chaos": {"rate": 1.0, "statuses": [503]}})
            assert r.status_code == 200, r.text
            assert r.json()["chaos"]["rate"] == 1.0
            _until(lambda: set(_statuses(client, token)) == {503})
            assert set(_statuses(client, token, 24)) == {503}
            assert client.get("/_graphsec/behaviour", headers=operator).json()["chaos"][
                "rate"] == 1.0
            r = client.put("/_graphsec/behaviour", headers=operator, json={})
            assert r.status_code == 200
            _until(lambda: set(_statuses(client, token)) == {200})
            assert set(_statuses(client, token, 24)) == {200}


def test_throttling_turned_on_for_one_tenant(backend: str, tmp_path: Path) -> None:
    with serving(backend, tmp_path, "--workers", "2") as server:
        token = server.token(TENANT, READ)
        key = load_or_create_operator_key(server.home)
        operator = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}/", timeout=10) as client:
            r = client.put("/_graphsec/behaviour", headers=operator, json={"tenants": {
                TENANT: {"throttling": {"enabled": True, "per_minute": 3}}}})
            assert r.status_code == 200, r.text
            time.sleep(1.5)  # every worker has polled once
            assert 429 in _statuses(client, token, 8)
            bad = client.put("/_graphsec/behaviour", headers=operator,
                             json={"throttling": {"per_minute": 0}})
            assert bad.status_code == 400
            assert "throttling.per_minute" in bad.json()["error"]["message"]
