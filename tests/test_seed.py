"""Sample data: deterministic, valid against the schema, internally consistent, loadable."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from graphsec.config import Settings
from graphsec.sample import Generator
from graphsec.schema.security import SECURE_SCORE, SECURE_SCORE_CONTROL_PROFILE, USER_SECURITY_PROFILE
from graphsec.schema.values import check_body, complete
from tests.conftest import _client, _pg_value

END = date(2026, 11, 1)


def generate(seed: int = 7, tenants: int = 6, days: int = 12) -> tuple[Generator, dict[str, list[Any]]]:
    gen = Generator(tenants, days, 8, 3, seed, END)
    gen.set_averages(gen.partial_sums(0, 3), gen.partial_sums(3, tenants))  # in two chunks
    data: dict[str, list[Any]] = defaultdict(list)
    for t in gen.tenants:
        data["scores"] += list(gen.secure_scores(t))
        data["profiles"] += list(gen.control_profiles(t))
        data["users"] += list(gen.user_profiles(t))
    return gen, data


def test_same_seed_same_data_other_seed_other_data() -> None:
    _, a = generate(seed=7)
    _, b = generate(seed=7)
    _, c = generate(seed=8)
    assert orjson.dumps(a) == orjson.dumps(b)
    assert orjson.dumps(a["scores"]) != orjson.dumps(c["scores"])


def test_every_document_is_valid_and_complete() -> None:
    _, data = generate()
    for key, entity in (("scores", SECURE_SCORE), ("profiles", SECURE_SCORE_CONTROL_PROFILE),
                        ("users", USER_SECURITY_PROFILE)):
        for doc in data[key]:
            checked = check_body(entity, doc, "create")
            assert complete(entity, checked) == complete(entity, doc)
            # stored complete, as the API stores documents: a PATCH completes only what changes
            assert complete(entity, doc) == doc


def test_scores_add_up_and_trend_daily() -> None:
    gen, data = generate()
    catalogue_max = sum(c.max_score for c in gen.controls)
    by_tenant: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in data["scores"]:
        assert s["currentScore"] == pytest.approx(sum(c["score"] for c in s["controlScores"]),
                                                  abs=0.011)
        assert s["maxScore"] == pytest.approx(catalogue_max)
        assert 0 <= s["currentScore"] <= s["maxScore"]
        assert s["activeUserCount"] <= s["licensedUserCount"]
        by_tenant[s["azureTenantId"]].append(s)
    for scores in by_tenant.values():
        days = [s["createdDateTime"][:10] for s in scores]
        assert len(days) == 12 == len(set(days))
        assert days[-1] == END.isoformat()
        assert {s["id"] for s in scores} == {f"{s['azureTenantId']}_{s['createdDateTime'][:10]}"
                                             for s in scores}


def test_comparative_averages_are_those_of_the_generated_tenants() -> None:
    gen, data = generate()
    band = {t.id: t.band for t in gen.tenants}
    industry = {t.id: t.industry for t in gen.tenants}
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for s in data["scores"]:
        day, tenant = s["createdDateTime"][:10], s["azureTenantId"]
        for key in ("all", f"seats{band[tenant]}", f"industry{industry[tenant]}"):
            groups[(day, key)].append(s["currentScore"])
    for s in data["scores"]:
        day, tenant = s["createdDateTime"][:10], s["azureTenantId"]
        comparative = {a["basis"]: a for a in s["averageComparativeScores"]}
        expected = {"AllTenants": "all", "TotalSeats": f"seats{band[tenant]}",
                    "IndustryTypes": f"industry{industry[tenant]}"}
        for basis, key in expected.items():
            values = groups[(day, key)]
            assert comparative[basis]["averageScore"] == pytest.approx(
                sum(values) / len(values), abs=0.006)
        low, high = band[tenant]
        assert comparative["TotalSeats"]["seatSizeRangeLowerValue"] == str(low)
        assert comparative["TotalSeats"]["seatSizeRangeUpperValue"] == str(high)
        assert comparative["IndustryTypes"]["categoryValue"] == industry[tenant]


def _seed_cli(settings: Settings, *args: str) -> str:
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "graphsec.cli", "seed", "--database", settings.database_url,
         "--tenants", "3", "--days", "40", "--controls", "6", "--users", "4", *args],
        env={"GRAPHSEC_HOME": str(settings.home), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def _analyze_count(url: str) -> int:
    return int(await _pg_value(
        url, "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'secure_scores'"))


async def test_seed_command_loads_data_the_api_serves(settings: Settings, auth: Any) -> None:
    analyzed = await _analyze_count(settings.database_url) if settings.backend == "postgresql" else 0
    out = _seed_cli(settings, "--workers", "2")
    if settings.backend == "postgresql":
        # the planner needs statistics to read pages from the default-order index
        assert await _analyze_count(settings.database_url) > analyzed
    assert "seeded 120 secureScores, 18 control profiles, 12 user security profiles" in out
    tenant = out.split("first tenant: ")[1].split()[0]
    again = _seed_cli(settings, "--workers", "1")  # loading the same data twice keeps one copy
    assert tenant in again
    headers = auth(tenant=tenant)
    async for client in _client(settings):
        page = (await client.get("/v1.0/security/secureScores?$top=1&$count=true",
                                 headers=headers)).json()
        assert page["@odata.count"] == 40
        assert page["value"][0]["createdDateTime"].startswith("2026-11-01")
        profiles = await client.get("/v1.0/security/secureScoreControlProfiles/$count",
                                    headers=headers)
        assert profiles.text == "6"
        users = await client.get("/beta/security/userSecurityProfiles?$filter=accounts/any("
                                 "a: a/status eq 'active' or a/status ne 'active')&$count=true",
                                 headers=headers)
        assert users.json()["@odata.count"] == 4
        filtered = await client.get(
            "/v1.0/security/secureScores?$filter=createdDateTime ge 2026-10-25T00:00:00Z and "
            "controlScores/any(c: c/score ge 0)&$count=true&$top=1", headers=headers)
        assert filtered.json()["@odata.count"] == 8


async def test_seed_prints_a_token_command_for_the_first_tenant(settings: Settings) -> None:
    """The printed ``graphsec token`` line, run as printed, gives a token that reads and
    writes the first tenant's data."""
    env = {"GRAPHSEC_HOME": str(settings.home), "PATH": "/usr/bin:/bin",
           # children run the code the test imports, also when it comes from PYTHONPATH
           **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"}}
    seeded = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "graphsec.cli", "seed", "--database", settings.database_url,
         "--tenants", "2", "--days", "3", "--controls", "2", "--users", "1", "--workers", "1"],
        env=env, capture_output=True, text=True, timeout=300, check=True)
    out = seeded.stdout
    assert "a token for it: " in out, out
    tenant = out.split("first tenant: ")[1].split()[0]
    command = out.split("a token for it: ")[1].splitlines()[0]
    assert command == f"graphsec token --tenant {tenant} --role SecurityEvents.ReadWrite.All"
    program, *args = shlex.split(command)
    assert program == "graphsec"
    minted = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "graphsec.cli", *args],
        env=env, capture_output=True, text=True, timeout=60, check=True)
    headers = {"Authorization": f"Bearer {minted.stdout.strip()}"}
    async for client in _client(settings):
        count = await client.get("/v1.0/security/secureScores/$count", headers=headers)
        assert (count.status_code, count.text) == (200, "3")
        created = await client.post("/v1.0/security/secureScores", headers=headers,
                                    json={"currentScore": 1.0})
        assert created.status_code == 201, created.text


def test_seed_refuses_bad_arguments(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "graphsec.cli", "seed", "--tenants", "0"],
        env={"GRAPHSEC_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "--tenants" in done.stderr


def test_demo_prints_a_working_token(tmp_path: Path) -> None:
    from tests.support.server import start_server

    server = start_server(tmp_path / "home", "--demo")
    try:
        log = server.log()
        token = log.split("export TOKEN=")[1].split()[0]
        r = httpx.get(f"http://127.0.0.1:{server.port}/v1.0/security/secureScores?$count=true",
                      headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
        assert r.json()["@odata.count"] == 30
    finally:
        server.stop()
