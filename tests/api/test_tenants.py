"""Tenant ids are GUIDs: one tenant whatever the case of its id, and nothing else is a tenant."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from graphsec.auth.tokens import LocalIssuer
from tests.conftest import RW, TENANT, score

URL = "/v1.0/security/secureScores"
UPPER = TENANT.upper()


async def test_upper_case_tid_sees_the_lower_case_tenants_data(client: httpx.AsyncClient,
                                                               auth: Any) -> None:
    created = await client.post(URL, json=score(id="s1"), headers=auth(tenant=TENANT))
    assert created.status_code == 201, created.text
    upper = auth(tenant=UPPER)
    got = await client.get(f"{URL}/s1", headers=upper)
    assert got.status_code == 200, got.text
    assert got.json()["azureTenantId"] == TENANT
    listed = await client.get(URL, headers=upper)
    assert [s["id"] for s in listed.json()["value"]] == ["s1"]
    patched = await client.patch(f"{URL}/s1", json={"currentScore": 1.0}, headers=upper)
    assert patched.status_code in (200, 204), patched.text


async def test_upper_case_tid_writes_under_the_canonical_tenant(client: httpx.AsyncClient,
                                                                auth: Any) -> None:
    created = await client.post(URL, json=score(id="s2"), headers=auth(tenant=UPPER))
    assert created.status_code == 201, created.text
    assert created.json()["azureTenantId"] == TENANT
    got = await client.get(f"{URL}/s2", headers=auth(tenant=TENANT))
    assert got.status_code == 200
    assert got.json()["azureTenantId"] == TENANT


@pytest.mark.parametrize("named", [
    pytest.param(UPPER, id="upper-case"),
    pytest.param(TENANT[:8].upper() + TENANT[8:], id="mixed-case"),
])
async def test_azure_tenant_id_in_a_body_compares_without_case(client: httpx.AsyncClient,
                                                               auth: Any, named: str) -> None:
    created = await client.post(URL, json=score(id="s3", azureTenantId=named), headers=auth())
    assert created.status_code == 201, created.text
    assert created.json()["azureTenantId"] == TENANT  # stored canonical
    patched = await client.patch(f"{URL}/s3", json={"azureTenantId": named}, headers=auth())
    assert patched.status_code in (200, 204), patched.text
    got = await client.get(f"{URL}/s3", headers=auth())
    assert got.json()["azureTenantId"] == TENANT


@pytest.mark.parametrize("tid", [
    pytest.param("contoso", id="a-name"),
    pytest.param("contoso.onmicrosoft.com", id="a-domain"),
    pytest.param("{" + TENANT + "}", id="in-braces"),
    pytest.param(TENANT.replace("-", ""), id="no-hyphens"),
    pytest.param(TENANT + "\n", id="trailing-newline"),
    pytest.param(TENANT + "0", id="one-digit-too-many"),
    pytest.param("g" + TENANT[1:], id="not-hex"),
    pytest.param("\u0661" + TENANT[1:], id="arabic-indic-digit"),
])
async def test_tid_that_is_not_a_guid_is_401(client: httpx.AsyncClient, issuer: LocalIssuer,
                                             tid: str) -> None:
    token = issuer.mint(tid, [RW])
    r = await client.get(URL, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401, r.text
    error = r.json()["error"]
    assert error["code"] == "InvalidAuthenticationToken"
    assert "is not a GUID" in error["message"]


def _token_cli(home: Path, tenant: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "graphsec.cli", "token", "--tenant", tenant, "--role", RW],
        env={**os.environ, "GRAPHSEC_HOME": str(home)},
        capture_output=True, text=True, timeout=60, check=False)


def test_cli_token_refuses_a_tenant_that_is_not_a_guid(tmp_path: Path) -> None:
    done = _token_cli(tmp_path / "home", "contoso")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr  # one line
    assert done.stderr.startswith("graphsec: --tenant 'contoso' is not a tenant id")
    assert "GUID" in done.stderr


def test_cli_token_writes_the_canonical_tenant(tmp_path: Path) -> None:
    import jwt

    done = _token_cli(tmp_path / "home", UPPER)
    assert done.returncode == 0, done.stderr
    claims = jwt.decode(done.stdout.strip(), options={"verify_signature": False})
    assert claims["tid"] == TENANT
