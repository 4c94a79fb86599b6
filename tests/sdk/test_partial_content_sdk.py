"""206 Partial Content and chaos through the official Python SDK (msgraph-sdk), against a real
``graphsec serve --config FILE``: a 206 is read as a success and its ``Warning`` through
``HeadersInspectionHandlerOption``; a GET by id of a failing provider's entity raises the
provider's status; a seeded chaos 429 is retried by the SDK's retry handler, which succeeds.
The README's "Partial answers" example runs here as written."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_http.middleware.options import HeadersInspectionHandlerOption
from msgraph import GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.secure_score import SecureScore
from msgraph.generated.models.security_vendor_information import SecurityVendorInformation

from graphsec.pressure.chaos import Monkey
from graphsec.pressure.config import parse
from tests.conftest import score
from tests.support.server import READ_WRITE, ClientFactory, RunningServer, serving, start_server

ROOT = Path(__file__).resolve().parents[2]
CHAOTIC = "7d5a1bd0-0000-4000-8000-000000000007"
CHAOS = {"rate": 0.5, "statuses": [429], "seed": 1, "retry_after_seconds": 1}
CONFIG = f"""
[[providers]]
vendor = "Contoso"
provider = "EDR"
status = 403

[tenants."{CHAOTIC}".chaos]
rate = {CHAOS["rate"]}
statuses = {CHAOS["statuses"]}
seed = {CHAOS["seed"]}
retry_after_seconds = {CHAOS["retry_after_seconds"]}
"""


@pytest.fixture(scope="module")
def graphsec_server(backend: str, tmp_path_factory: pytest.TempPathFactory
                    ) -> Iterator[RunningServer]:
    """This module's server (``make_client`` of tests/sdk/conftest.py builds clients on it):
    one worker, since chaos is repeatable per worker process, so its sequence is known here."""
    root = tmp_path_factory.mktemp(f"partial-{backend}")
    (root / "graphsec.toml").write_text(CONFIG)
    with serving(backend, root, "--config", str(root / "graphsec.toml"),
                 clean_log=False) as server:
        yield server


def a_score(vendor: str, provider: str, day: int) -> SecureScore:
    return SecureScore(
        active_user_count=3, licensed_user_count=9, current_score=float(day), max_score=90.0,
        created_date_time=datetime(2024, 4, day, tzinfo=UTC), enabled_services=[],
        average_comparative_scores=[], control_scores=[],
        vendor_information=SecurityVendorInformation(vendor=vendor, provider=provider))


async def test_a_206_is_a_success_and_its_warning_is_read_by_inspection(
        graphsec_server: RunningServer, make_client: ClientFactory) -> None:
    client: GraphServiceClient = await make_client(
        graphsec_server.token(str(uuid.uuid4()), READ_WRITE))
    for vendor, provider, day in (("Microsoft", "SecureScore", 1), ("Contoso", "EDR", 2)):
        assert await client.security.secure_scores.post(a_score(vendor, provider, day))
    inspect = HeadersInspectionHandlerOption(inspect_response_headers=True)
    page = await client.security.secure_scores.get(RequestConfiguration(options=[inspect]))
    assert page is not None
    assert page.value is not None
    assert [s.vendor_information.provider for s in page.value
            if s.vendor_information is not None] == ["SecureScore"]
    assert inspect.response_headers.get("warning") == {'199 - "Contoso/EDR/403/0"'}


async def test_get_by_id_of_a_failing_provider_s_entity_raises_its_status(
        graphsec_server: RunningServer, make_client: ClientFactory) -> None:
    client: GraphServiceClient = await make_client(
        graphsec_server.token(str(uuid.uuid4()), READ_WRITE))
    created = await client.security.secure_scores.post(a_score("Contoso", "EDR", 3))
    assert created is not None
    assert created.id is not None
    with pytest.raises(ODataError) as raised:
        await client.security.secure_scores.by_secure_score_id(created.id).get()
    assert raised.value.response_status_code == 403
    assert raised.value.error is not None
    assert raised.value.error.code == "Authorization_RequestDenied"


async def test_the_sdk_retries_a_seeded_chaos_429_and_succeeds(
        graphsec_server: RunningServer, make_client: ClientFactory) -> None:
    """The seed's sequence starts 429, 429, pass: the SDK's retry handler waits the integer
    ``Retry-After`` twice and returns the third answer."""
    expected = Monkey(parse({"tenants": {CHAOTIC: {"chaos": CHAOS}}}))
    assert [(o.status if o else None) for o in (expected.draw(CHAOTIC) for _ in range(3))] == [
        429, 429, None]
    client: GraphServiceClient = await make_client(graphsec_server.token(CHAOTIC, READ_WRITE))
    page = await client.security.secure_scores.get()
    assert page is not None
    assert page.value == []


# -- the README's example, as written ------------------------------------------------------------

def readme_blocks() -> tuple[str, str]:
    """The README's providers TOML and its HeadersInspectionHandlerOption example."""
    readme = (ROOT / "README.md").read_text()
    (toml,) = [b for b in re.findall(r"^```toml\n(.*?)^```$", readme, re.M | re.S)
               if "[[providers]]" in b]
    (python,) = [b for b in re.findall(r"^```python\n(.*?)^```$", readme, re.M | re.S)
                 if "HeadersInspectionHandlerOption" in b]
    return toml, python


def test_the_readme_partial_answer_example_prints_what_the_readme_says(
        tmp_path: Path) -> None:
    toml, python = readme_blocks()
    (tmp_path / "graphsec.toml").write_text(toml)
    (tmp_path / "example.py").write_text(python)
    server = start_server(tmp_path / "home", "--config", str(tmp_path / "graphsec.toml"))
    try:
        token = server.token(str(uuid.uuid4()), READ_WRITE)
        created = httpx.post(f"{server.base_url()}/security/secureScores", json=score(),
                             headers={"Authorization": f"Bearer {token}"}, trust_env=False)
        assert created.status_code == 201, created.text
        done = subprocess.run(  # noqa: S603
            [sys.executable, str(tmp_path / "example.py")],
            env={**server.env, "TOKEN": token, "GRAPHSEC_URL": server.base_url()},
            capture_output=True, text=True, timeout=120, check=False)
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr
    printed = done.stdout.strip()
    assert printed == """0 {'199 - "Microsoft/SecureScore/403/0"'}"""
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert f"this prints `{printed}`" in readme
