"""Fixtures of the admin API's tests: the operator's Authorization header, NDJSON helpers."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import orjson
import pytest

from graphsec.auth.operator import load_or_create_operator_key
from graphsec.config import Settings

NDJSON = {"Content-Type": "application/x-ndjson"}


@pytest.fixture
def operator(settings: Settings) -> dict[str, str]:
    """The Authorization header of the operator key of ``settings``' home."""
    return {"Authorization": f"Bearer {load_or_create_operator_key(settings.home)}"}


Importer = Callable[[bytes], httpx.Response]


def lines(export: bytes) -> list[dict[str, object]]:
    """The parsed lines of an export, the header included."""
    return [orjson.loads(line) for line in export.splitlines()]


def ndjson(*docs: object) -> bytes:
    return b"".join(orjson.dumps(d) + b"\n" for d in docs)
