"""``/metrics``: Prometheus text read back with prometheus-client's own parser; each request
counted exactly once under its entity set, method and status; the operator key guards it."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from graphsec.auth.principal import Principal
from graphsec.config import Settings
from graphsec.observability.metrics import Metrics, forget_dead_workers
from graphsec.observability.observer import Observer
from graphsec.pressure.chaos import Monkey
from graphsec.pressure.config import parse
from tests.api.test_errors import assert_graph_error
from tests.conftest import TENANT, Headers, _client, _pg, score
from tests.observability.conftest import parse_metrics, scrape, value

URL = "/v1.0/security/secureScores"
REQUESTS = "graphsec_requests_total"


async def test_each_request_counts_once_under_its_entity_set_method_and_status(
        client: httpx.AsyncClient, rw: dict[str, str], operator: dict[str, str]) -> None:
    sid = (await client.post(URL, json=score(), headers=rw)).json()["id"]
    before = await scrape(client, operator)
    assert (await client.get(f"{URL}/{sid}", headers=rw)).status_code == 200
    assert (await client.get(f"{URL}/nope", headers=rw)).status_code == 404
    assert (await client.get("/beta/security/SECURESCORES", headers=rw)).status_code == 200
    after = await scrape(client, operator)

    def delta(name: str, **labels: object) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta(REQUESTS, entity_set="secureScores", method="GET", status=200) == 2
    assert delta(REQUESTS, entity_set="secureScores", method="GET", status=404) == 1
    assert delta(REQUESTS, entity_set="none", method="GET", status=200) == 1  # the scrape
    assert delta("graphsec_request_duration_seconds_count", entity_set="secureScores",
                 method="GET") == 3
    assert delta("graphsec_request_duration_seconds_sum", entity_set="secureScores",
                 method="GET") > 0
    assert value(after, REQUESTS, entity_set="secureScores", method="POST", status=201) == 1


async def test_the_pool_gauge_shows_the_connections_held(
        client: httpx.AsyncClient, rw: dict[str, str], operator: dict[str, str]) -> None:
    assert (await client.get(URL, headers=rw)).status_code == 200
    samples = await scrape(client, operator)
    idle = value(samples, "graphsec_db_pool_connections", state="idle")
    in_use = value(samples, "graphsec_db_pool_connections", state="in_use")
    assert idle >= 1
    assert in_use == 0  # nothing runs while the scrape is answered


@pytest.mark.parametrize(("header", "status"), [
    pytest.param(None, 401, id="no-credential"),
    pytest.param("Bearer not-the-key-0000000000000000000000000000", 401, id="wrong-key"),
    pytest.param("Basic b3BlcmF0b3I6eA==", 401, id="another-scheme"),
    pytest.param("tenant", 403, id="a-tenants-token"),
])
async def test_metrics_need_the_operator_key(client: httpx.AsyncClient, auth: Headers,
                                             header: str | None, status: int) -> None:
    headers = {} if header is None else auth() if header == "tenant" \
        else {"Authorization": header}
    r = await client.get("/metrics", headers=headers)
    assert_graph_error(r, status, "InvalidAuthenticationToken" if status == 401
                       else "Authorization_RequestDenied")
    assert "graphsec_requests" not in r.text


async def test_metrics_public_needs_no_credential_and_any_host(
        observed: Settings, access_lines: list[str]) -> None:
    public = dataclasses.replace(observed, metrics_public=True)
    async for c in _client(public):
        r = await c.get("/metrics", headers={"Host": "10.1.2.3:8000"})
        assert r.status_code == 200
        assert "graphsec_requests_total" in r.text


async def test_metrics_off_is_404(settings: Settings, access_lines: list[str]) -> None:
    async for c in _client(dataclasses.replace(settings, metrics=False)):
        assert_graph_error(await c.get("/metrics"), 404, "itemNotFound")


async def test_a_throttled_request_is_counted(
        observed: Settings, auth: Headers, access_lines: list[str]) -> None:
    behaviour = parse({"throttling": {"enabled": True},
                       "tenants": {TENANT: {"throttling": {"per_minute": 1}}}})
    tight = dataclasses.replace(observed, behaviour=behaviour, metrics_public=True)
    if observed.backend == "postgresql":  # the buckets outlive a test there: start empty
        await _pg(["DO $$ BEGIN IF to_regclass('graphsec_throttle.windows') IS NOT NULL THEN "
                   "TRUNCATE graphsec_throttle.windows, graphsec_throttle.leases; END IF; "
                   "END $$"], observed.database_url)
    async for c in _client(tight):
        statuses = [(await c.get(URL, headers=auth())).status_code for _ in range(3)]
        assert statuses == [200, 429, 429]
        samples = parse_metrics((await c.get("/metrics")).text)
        assert value(samples, "graphsec_throttled_total", entity_set="secureScores") == 2
        assert value(samples, REQUESTS, entity_set="secureScores", method="GET",
                     status=429) == 2
        await c._transport.app.throttle.close()  # type: ignore[attr-defined]


async def test_chaos_strikes_are_counted_by_status() -> None:
    metrics = Metrics()
    monkey = Monkey(parse({"chaos": {"rate": 1.0, "statuses": [503], "seed": 1}}),
                    on_strike=metrics.chaos_struck)
    for _ in range(3):
        with pytest.raises(Exception, match="chaos"):
            await monkey.strike(TENANT)
    samples = parse_metrics(metrics.render().decode())
    assert value(samples, "graphsec_chaos_injected_total", status=503) == 3
    assert value(samples, "graphsec_chaos_injected_total", status="latency") == 0


def test_methods_a_client_invents_count_as_other() -> None:
    metrics = Metrics()
    observer = Observer(metrics, None, ["secureScores"])

    class Seen:
        method = "BREW"
        raw_path = "/v1.0/security/secureScores('x')"
        request_id = client_request_id = "r"
        principal: Principal | None = None
        entity_set: str | None = None

    observer.done(Seen(), 405, 0.001)
    samples = parse_metrics(metrics.render().decode())
    assert value(samples, REQUESTS, entity_set="secureScores", method="other", status=405) == 1
    assert metrics._children == {}  # not kept: clients choose methods freely


def test_the_command_line_does_not_import_prometheus_client() -> None:
    """``graphsec serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` before the workers start; had it
    imported prometheus-client before, the workers would inherit its single-process mode and a
    scrape would count one worker alone (``observability/multiprocess.py``)."""
    code = ("import sys, graphsec.cli, graphsec.app\n"
            "assert 'prometheus_client' not in sys.modules, 'imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,  # noqa: S603
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]


def test_metrics_refuse_a_multiprocess_folder_named_too_late(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    with pytest.raises(RuntimeError, match="imported before PROMETHEUS_MULTIPROC_DIR"):
        Metrics()


def test_the_live_gauges_of_dead_workers_are_dropped_and_their_counts_kept(
        tmp_path: Path) -> None:
    dead = 2**22 + 12345  # above Linux's pid_max default: no such process
    for name in (f"gauge_livesum_{dead}.db", f"gauge_livesum_{os.getpid()}.db",
                 f"counter_{dead}.db"):
        (tmp_path / name).write_bytes(b"")
    forget_dead_workers(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"counter_{dead}.db", f"gauge_livesum_{os.getpid()}.db"]
