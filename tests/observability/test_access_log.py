"""The access log: one line per request with its ids, caller, route, status and duration, and
never a token, a secret, a body or a query value (graphsec.observability.access_log)."""

from __future__ import annotations

import dataclasses
import logging

import httpx
import orjson
import pytest

from graphsec.config import Settings
from graphsec.observability.access_log import LOGGER, AccessLog
from tests.conftest import TENANT, Headers, _client, score
from tests.observability.conftest import Lines

URL = "/v1.0/security/secureScores"


async def test_a_json_line_per_request_with_ids_caller_route_status_duration(
        client: httpx.AsyncClient, rw: dict[str, str], access_lines: list[str]) -> None:
    created = await client.post(URL, json=score(), headers=rw)
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    r = await client.get(f"{URL}/{sid}?$select=id", headers={**rw, "client-request-id": "mine-1"})
    assert r.status_code == 200
    assert len(access_lines) == 2
    line = orjson.loads(access_lines[-1])
    assert line["request-id"] == r.headers["request-id"]
    assert line["client-request-id"] == "mine-1"
    assert line["tenant"] == TENANT
    assert line["application"] == "graphsec-dev"
    assert line["method"] == "GET"
    assert line["route"] == f"{URL}/{sid}"  # the query string is not logged
    assert line["entity-set"] == "secureScores"
    assert line["status"] == 200
    assert 0 < line["duration_ms"] < 10_000
    assert line["time"].endswith("Z")


async def test_errors_and_other_paths_are_logged_without_a_caller(
        client: httpx.AsyncClient, access_lines: list[str]) -> None:
    r = await client.get(URL)
    assert r.status_code == 401
    await client.get("/v1.0/$batch")
    await client.get("/healthz")
    lines = [orjson.loads(line) for line in access_lines]
    assert [(x["status"], x["tenant"], x["entity-set"]) for x in lines] == [
        (401, None, "secureScores"), (401, None, "$batch"), (200, None, "none")]


async def test_no_token_secret_body_or_query_value_is_logged(
        client: httpx.AsyncClient, auth: Headers, access_lines: list[str]) -> None:
    token_header = auth()
    token = token_header["Authorization"].split()[1]
    marker = "s3cret-marker-9f1c"
    await client.post(URL, json=score(controlScores=[{"controlName": marker}]),
                      headers=token_header)
    await client.get(f"{URL}?$filter=id eq '{marker}'", headers=token_header)
    await client.post(f"/{TENANT}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": "00000000-0000-0000-0000-000000000001",
        "client_secret": marker, "scope": "https://graph.microsoft.com/.default"})
    await client.get(URL, headers={"Authorization": f"Bearer {marker}"})
    text = "\n".join(access_lines)
    assert [orjson.loads(x)["entity-set"] for x in access_lines] == [
        "secureScores", "secureScores", "entra", "secureScores"]
    assert marker not in text
    assert token not in text
    assert token.split(".")[2] not in text  # not even the signature


async def test_log_format_off_writes_nothing_and_keeps_the_metrics(
        settings: Settings, rw: dict[str, str], access_lines: list[str]) -> None:
    off = dataclasses.replace(settings, metrics=True, log_format="off")
    async for c in _client(off):
        assert (await c.get(URL, headers=rw)).status_code == 200
        assert c._transport.app.observer.access_log is None  # type: ignore[attr-defined]
    assert access_lines == []


async def test_both_off_means_no_observer(settings: Settings, access_lines: list[str]) -> None:
    off = dataclasses.replace(settings, metrics=False, log_format="off")
    async for c in _client(off):
        assert c._transport.app.observer is None  # type: ignore[attr-defined]
        assert (await c.get("/metrics")).status_code == 404


@pytest.fixture
def text_log(access_lines: list[str]) -> AccessLog:
    return AccessLog("text")


def test_a_text_line_escapes_what_a_client_chose(
        text_log: AccessLog, access_lines: list[str]) -> None:
    text_log.write({"request-id": "r1", "client-request-id": "x\nforged 200 line\x1b[31m",
                    "tenant": None, "application": None, "method": "GET",
                    "route": "/v1.0/a\udcff\r\nb", "entity-set": "none", "status": 400,
                    "duration_ms": 1.5})
    (line,) = access_lines
    assert "\n" not in line
    assert "\r" not in line
    assert "\x1b" not in line
    assert "client-request-id=x\\nforged 200 line\\x1b[31m" in line
    assert " GET /v1.0/a\\xff\\r\\nb 400 1.50ms request-id=r1 " in line


def test_a_json_line_keeps_bytes_that_are_not_utf8_readable(access_lines: list[str]) -> None:
    AccessLog("json").write({"route": "/v1.0/\udcff", "status": 400})
    assert orjson.loads(access_lines[0])["route"] == "/v1.0/\\xff"


LINE = {"request-id": "r1", "client-request-id": "c1", "tenant": None, "application": None,
        "method": "GET", "route": "/healthz", "entity-set": "none", "status": 200,
        "duration_ms": 0.1}


def test_lines_go_to_stderr_and_to_handlers_a_configuration_adds(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    logger = logging.getLogger(LOGGER)
    monkeypatch.setattr(logger, "handlers", [])  # as in a fresh process
    log = AccessLog("json")
    log.write(LINE)
    assert orjson.loads(capsys.readouterr().err)["request-id"] == "r1"
    configured = Lines()
    logger.addHandler(configured)
    log.write({**LINE, "request-id": "r2"})
    assert orjson.loads(capsys.readouterr().err)["request-id"] == "r2"  # still on stderr
    assert [orjson.loads(x)["request-id"] for x in configured.lines] == ["r2"]
    logger.setLevel(logging.WARNING)  # a configuration that silences it
    try:
        log.write(LINE)
    finally:
        logger.setLevel(logging.INFO)
    assert capsys.readouterr().err == ""
