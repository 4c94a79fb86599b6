"""An app with metrics and the JSON access log on, its access lines, and its metrics parsed."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from graphsec.auth.operator import load_or_create_operator_key
from graphsec.config import Settings
from graphsec.observability.access_log import LOGGER
from tests.conftest import _client


class Lines(logging.Handler):
    """The access log's lines, as written."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def access_lines() -> Iterator[list[str]]:
    """Every line the access log writes during the test (the logger's handler: no stderr)."""
    logger = logging.getLogger(LOGGER)
    handler = Lines()
    logger.addHandler(handler)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)


@pytest.fixture
def observed(settings: Settings) -> Settings:
    return dataclasses.replace(settings, metrics=True, log_format="json")


@pytest.fixture
async def client(observed: Settings, access_lines: list[str]) -> AsyncIterator[httpx.AsyncClient]:
    async for c in _client(observed):
        yield c


@pytest.fixture
def operator(observed: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {load_or_create_operator_key(observed.home)}"}


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse_metrics(text: str) -> Samples:
    """Every sample of a scrape by (name, sorted labels), read with prometheus-client's parser."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def scrape(client: httpx.AsyncClient, headers: dict[str, str]) -> Samples:
    r = await client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return parse_metrics(r.text)


def value(samples: Samples, name: str, **labels: Any) -> float:
    return samples.get((name, tuple(sorted((k, str(v)) for k, v in labels.items()))), 0.0)
