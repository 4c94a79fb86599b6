"""The pytest plugin (graphsec.testing.plugin), used by small test projects run with pytester.

Each project runs in a subprocess, as a user's suite would: the plugin comes from the installed
``pytest11`` entry point, not from this suite's conftest.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.postgres import fresh_postgres_database

pytest_plugins = ("pytester",)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "test_secure_scores.py"


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # the project is in pytester's folder; a subprocess run, as a user's pytest would be
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", *args, timeout=300)


def test_readme_example_module_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_example=EXAMPLE.read_text())
    run(pytester).assert_outcomes(passed=4)


def test_readme_shows_the_example_module_as_it_is_tested() -> None:
    assert EXAMPLE.read_text().strip() in (ROOT / "README.md").read_text()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    databases = fresh_postgres_database()
    try:
        yield next(databases)
    finally:
        databases.close()


def test_example_module_passes_on_postgresql(pytester: pytest.Pytester,
                                             postgres_url: str) -> None:
    pytester.makeini(f"[pytest]\ngraphsec_database = {postgres_url}\n")
    pytester.makepyfile(test_example=EXAMPLE.read_text())
    run(pytester).assert_outcomes(passed=4)


ISOLATION = '''
import pytest

TENANT = "1d5a1bd0-0000-4000-8000-000000000001"
SCORE = {"id": "s1", "azureTenantId": TENANT, "createdDateTime": "2026-11-30T00:00:00Z",
         "currentScore": 1.0, "maxScore": 2.0, "activeUserCount": 1, "licensedUserCount": 1,
         "enabledServices": [], "averageComparativeScores": [], "controlScores": [],
         "vendorInformation": {"provider": "SecureScore", "vendor": "Microsoft"}}

def count(graphsec):
    return sum(t["secureScores"] for t in graphsec.tenants())

def test_a_stores_one(graphsec):
    graphsec.load({"secureScores": [SCORE]}, tenant=TENANT)
    assert count(graphsec) == 1

@pytest.mark.graphsec(reset=False)
def test_b_kept_sees_it(graphsec):
    assert count(graphsec) == 1

def test_c_fresh_sees_nothing(graphsec):
    assert count(graphsec) == 0

def test_d_token_is_for_the_default_tenant(graphsec_token, graphsec_tenant):
    import base64, json
    claims = graphsec_token(roles=["SecurityEvents.Read.All"]).split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    assert claims["tid"] == graphsec_tenant
    assert claims["roles"] == ["SecurityEvents.Read.All"]
'''


def test_tests_see_each_others_data_only_when_marked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_isolation=ISOLATION)
    run(pytester).assert_outcomes(passed=4)


def test_without_the_reset_a_later_test_would_see_the_data(pytester: pytest.Pytester) -> None:
    # the same project with every test kept: test_c now fails, so the reset is what isolates
    pytester.makepyfile(test_isolation="import pytest\npytestmark = pytest.mark.graphsec("
                        "reset=False)\n" + ISOLATION)
    result = run(pytester)
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*test_c_fresh_sees_nothing*"])


def test_marker_loads_json_files_and_seeds(pytester: pytest.Pytester) -> None:
    score = {"id": "t1", "azureTenantId": "6babcaad-604b-40ac-a9d7-9fd97c0b779f",
             "createdDateTime": "2026-11-30T00:00:00Z", "currentScore": 5.0, "maxScore": 9.0,
             "activeUserCount": 1, "licensedUserCount": 1, "enabledServices": [],
             "averageComparativeScores": [], "controlScores": [],
             "vendorInformation": {"provider": "SecureScore", "vendor": "Microsoft"}}
    (pytester.path / "data").mkdir()
    (pytester.path / "data" / "scores.json").write_text(json.dumps({"secureScores": [score]}))
    pytester.makepyfile(test_loaded='''
import pytest

@pytest.mark.graphsec(load=["data/scores.json"], seed={"tenants": 2, "days": 3, "seed": 9})
def test_loaded_and_seeded(graphsec, graphsec_tenant):
    counts = {t["tenantId"]: t["secureScores"] for t in graphsec.tenants()}
    assert counts.pop(graphsec_tenant) == 1
    assert sorted(counts.values()) == [3, 3]
''')
    run(pytester).assert_outcomes(passed=1)


def test_serve_args_from_the_ini_reach_the_server(pytester: pytest.Pytester) -> None:
    # chaos on every request: a Graph call fails with the configured status, the admin API not
    (pytester.path / "chaos.toml").write_text("[chaos]\nrate = 1.0\nstatuses = [503]\nseed = 1\n")
    pytester.makeini(f"[pytest]\ngraphsec_serve_args = --config {pytester.path / 'chaos.toml'}\n")
    pytester.makepyfile(test_chaos='''
import urllib.error, urllib.request

def test_graph_fails(graphsec, graphsec_token):
    request = urllib.request.Request(graphsec.base_url() + "/security/secureScores",
                                     headers={"Authorization": "Bearer " + graphsec_token()})
    try:
        urllib.request.urlopen(request)
    except urllib.error.HTTPError as exc:
        assert exc.code == 503
    else:
        raise AssertionError("chaos did not reach the server")
''')
    run(pytester).assert_outcomes(passed=1)


def test_unknown_marker_keyword_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bad='''
import pytest

@pytest.mark.graphsec(seeds={"tenants": 1})
def test_x(graphsec):
    pass
''')
    result = run(pytester)
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*graphsec takes only the keywords*got seeds*"])


def test_the_server_is_stopped_with_the_session(pytester: pytest.Pytester,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_pid='''
import os

def test_pid(graphsec):
    with open(os.environ["PID_FILE"], "w") as f:
        f.write(str(graphsec.port))
''')
    pid_file = pytester.path / "port.txt"
    monkeypatch.setenv("PID_FILE", str(pid_file))
    run(pytester).assert_outcomes(passed=1)
    with socket.socket() as sock:  # nothing listens on the server's port any more
        assert sock.connect_ex(("127.0.0.1", int(pid_file.read_text()))) != 0
