"""The ``--config`` file: every key checked, a bad file stops ``serve`` with one line naming
the key, before it listens or touches the database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from graphsec.pressure.config import ConfigError, Provider, parse

TID = "1d5a1bd0-0000-4000-8000-000000000001"


def test_defaults_are_graph_s_limits_and_everything_off() -> None:
    behaviour = parse({})
    t = behaviour.default.throttling
    assert (t.enabled, t.per_minute, t.per_ten_minutes, t.concurrent,
            t.global_per_ten_seconds) == (False, 150, 10_000, 4, 130_000)
    assert not behaviour.throttling_anywhere
    assert not behaviour.chaos_anywhere
    assert parse({}, throttle=True).default.throttling.enabled
    assert not parse({"throttling": {"enabled": False}}, throttle=True).default.throttling.enabled


def test_a_tenant_overrides_key_by_key_and_providers_by_name() -> None:
    behaviour = parse({
        "throttling": {"enabled": True, "per_minute": 50},
        "chaos": {"rate": 0.5, "seed": 3},
        "providers": [{"vendor": "Microsoft", "provider": "SecureScore", "status": 503},
                      {"vendor": "Contoso", "provider": "Scanner", "status": 403}],
        "tenants": {TID.upper(): {
            "throttling": {"per_minute": 5},
            "chaos": {"rate": 1.0},
            "providers": [{"vendor": "microsoft", "provider": "securescore"}],
        }},
    })
    mine = behaviour.of(TID)  # tenant ids are compared without case
    assert (mine.throttling.enabled, mine.throttling.per_minute) == (True, 5)
    assert (mine.chaos.rate, mine.chaos.seed) == (1.0, 3)
    assert {p.key: p.status for p in mine.providers} == {
        ("microsoft", "securescore"): None, ("contoso", "scanner"): 403}
    other = behaviour.of("2e6b2ce1-0000-4000-8000-000000000002")
    assert other.throttling.per_minute == 50
    assert other.chaos.rate == 0.5


def test_a_provider_past_its_timeout_reads_as_504() -> None:
    assert Provider("V", "P", latency_ms=12_000).failure == (504, 10_000)
    assert Provider("V", "P", latency_ms=500).failure is None
    assert Provider("V", "P", status=403, latency_ms=10).failure == (403, 10)


@pytest.mark.parametrize(("data", "names"), [
    ({"throttle": {}}, "unknown key 'throttle'"),
    ({"throttling": {"per_minutes": 1}}, "unknown key 'throttling.per_minutes'"),
    ({"throttling": {"per_minute": "150"}}, "throttling.per_minute must be a whole number"),
    ({"throttling": {"per_minute": 0}}, "throttling.per_minute must be a whole number"),
    ({"throttling": {"enabled": 1}}, "throttling.enabled must be true or false"),
    ({"chaos": {"rate": 2}}, "chaos.rate must be a number from 0 to 1"),
    ({"chaos": {"statuses": [200]}}, "chaos.statuses: 200 is not one of the error statuses"),
    ({"chaos": {"latency_ms": [5, 1]}}, "chaos.latency_ms must be [low, high]"),
    ({"providers": [{"vendor": "V", "provider": "P", "status": 200}]},
     "providers[0].status: 200 is not an error status"),
    ({"providers": [{"vendor": "V"}]}, "providers[0].provider is required"),
    ({"providers": {"vendor": "V"}}, "providers must be an array of tables"),
    ({"tenants": {"contoso": {}}}, "'contoso' is not a tenant id"),
    ({"tenants": {TID: {"throttling": {"global_per_ten_seconds": 5}}}},
     "the global limit is per application across all tenants"),
    ({"tenants": {TID: {"chaos": {"rate": -1}}}}, f'tenants."{TID}".chaos.rate'),
])
def test_a_bad_key_is_named(data: dict[str, Any], names: str) -> None:
    with pytest.raises(ConfigError, match=None) as caught:
        parse(data)
    assert names in str(caught.value)


def test_serve_with_a_bad_file_stops_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "graphsec.toml"
    config.write_text("[chaos]\nrate = 0.2\nstatuses = [429, 200]\n")
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "graphsec.cli", "serve", "--port", "1", "--config", str(config)],
        env={**os.environ, "GRAPHSEC_HOME": str(tmp_path / "home")}, capture_output=True,
        text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "graphsec: chaos.statuses: 200 is not one of the error statuses chaos answers with "
        "(429, 500, 502, 503, 504)"]
    assert not (tmp_path / "home" / "graphsec.db").exists()  # nothing started

    config.write_text("[chaos\n")
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "graphsec.cli", "serve", "--config", str(config)],
        env={**os.environ, "GRAPHSEC_HOME": str(tmp_path / "home")}, capture_output=True,
        text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1
    assert "is not valid TOML" in done.stderr
