"""Metrics and the access log on a real server with two workers: a scrape, whichever worker
answers it, counts every request any worker served (prometheus-client's multiprocess mode),
read back with prometheus-client's own parser; one JSON access line per request."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import orjson

from graphsec.auth.operator import load_or_create_operator_key
from tests.conftest import score
from tests.observability.conftest import parse_metrics, value
from tests.support.server import READ_WRITE, serving

TENANT = "1d5a1bd0-0000-4000-8000-000000000001"
URL = "/v1.0/security/secureScores"
SENT = 60


def test_a_scrape_counts_every_request_of_both_workers(backend: str, tmp_path: Path) -> None:
    with serving(backend, tmp_path, "--workers", "2", "--metrics", "--log-format",
                 "json") as server:
        token = {"Authorization": f"Bearer {server.token(TENANT, READ_WRITE)}"}
        operator = {"Authorization": f"Bearer {load_or_create_operator_key(server.home)}"}
        origin = f"http://127.0.0.1:{server.port}"
        with httpx.Client(base_url=origin, timeout=10) as http:
            created = http.post(URL, json=score(), headers=token)
            assert created.status_code == 201, created.text
            sid = created.json()["id"]
        statuses = []
        for n in range(SENT):  # a connection each: the workers share them out
            with httpx.Client(base_url=origin, timeout=10) as http:
                path = f"{URL}/{sid}" if n % 3 else f"{URL}/missing-{n}"
                statuses.append(http.get(path, headers=token).status_code)
        with httpx.Client(base_url=origin, timeout=10) as http:
            r = http.get("/metrics", headers=operator)
        assert r.status_code == 200, r.text
        samples = parse_metrics(r.text)
        assert statuses.count(200) == 40
        assert statuses.count(404) == 20
        for status in (200, 404):
            assert value(samples, "graphsec_requests_total", entity_set="secureScores",
                         method="GET", status=status) == statuses.count(status)
        assert value(samples, "graphsec_request_duration_seconds_count",
                     entity_set="secureScores", method="GET") == SENT
        assert value(samples, "graphsec_db_pool_connections", state="idle") >= 1
        folder = server.home / "metrics" / str(server.process.pid)
        counted_by = [name for name in os.listdir(folder) if name.startswith("counter_")]
        assert len(counted_by) >= 2, counted_by  # both workers served (and counted) requests
        lines = [orjson.loads(line) for line in server.log().splitlines()
                 if line.startswith('{"time"')]
        gets = [x for x in lines if x["method"] == "GET" and x["entity-set"] == "secureScores"]
        assert len(gets) == SENT
        assert {x["tenant"] for x in gets} == {TENANT}
        assert token["Authorization"].split()[1] not in server.log()


def test_metrics_and_the_log_are_off_unless_asked(tmp_path: Path) -> None:
    with serving("sqlite", tmp_path, "--log-format", "off") as server:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as http:
            assert http.get("/metrics").status_code == 404
            assert http.get("/readyz").json() == {"status": "ready"}
        assert '{"time"' not in server.log()
        assert not (server.home / "metrics").exists()


def test_one_worker_counts_through_the_same_folder(tmp_path: Path) -> None:
    with serving("sqlite", tmp_path, "--metrics", "--metrics-public") as server:
        origin = f"http://127.0.0.1:{server.port}"
        with httpx.Client(base_url=origin, timeout=10) as http:
            for _ in range(5):
                assert http.get(URL).status_code == 401
            samples = parse_metrics(http.get("/metrics").text)
        assert value(samples, "graphsec_requests_total", entity_set="secureScores",
                     method="GET", status=401) == 5
        folder = server.home / "metrics" / str(server.process.pid)
        assert any(name.startswith("counter_") for name in os.listdir(folder))
