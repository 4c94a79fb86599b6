"""The batching tests of tests/api/test_batch.py, run against a real ``graphsec serve``.

The same test functions, imported, with the fixtures they use (``client``, ``issuer``) pointed at
a server process with two workers on each backend; the tables are emptied before each test, as
the in-process fixtures start each test from an empty store. Over real HTTP, this proves the
envelope, the per-request answers and the outer ``request-id`` as a client sees them (the batch
passes granian's body handling and the server's own Host and origin checks).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from graphsec.auth.keys import load_or_create
from graphsec.auth.tokens import LocalIssuer
from tests.api.test_batch import (
    test_a_failing_link_fails_the_rest_of_the_chain_with_424,
    test_a_malformed_batch_is_a_400_and_nothing_runs,
    test_a_request_of_another_tenant_is_not_found_and_leaks_nothing,
    test_a_sequential_batch_runs_in_order,
    test_an_envelope_that_is_not_a_batch_is_a_400,
    test_bad_requests_inside_a_batch_answer_alone,
    test_create_read_patch_and_count_across_the_three_entity_sets,
    test_each_answer_has_its_own_request_id_and_the_client_request_id_it_was_sent,
    test_permissions_are_checked_per_request,
    test_prefer_and_paging_work_inside_a_batch,
    test_snake_case_depends_on_is_ignored_as_graph_ignores_it,
    test_the_batch_itself_needs_a_token_post_and_json,
    test_the_tenant_is_the_batch_token_s,
)
from tests.support.postgres import TABLES, empty
from tests.support.server import RunningServer, serving

__all__ = [  # the imported tests run here, against the server
    "test_a_failing_link_fails_the_rest_of_the_chain_with_424",
    "test_a_malformed_batch_is_a_400_and_nothing_runs",
    "test_a_request_of_another_tenant_is_not_found_and_leaks_nothing",
    "test_a_sequential_batch_runs_in_order",
    "test_an_envelope_that_is_not_a_batch_is_a_400",
    "test_bad_requests_inside_a_batch_answer_alone",
    "test_create_read_patch_and_count_across_the_three_entity_sets",
    "test_each_answer_has_its_own_request_id_and_the_client_request_id_it_was_sent",
    "test_permissions_are_checked_per_request",
    "test_prefer_and_paging_work_inside_a_batch",
    "test_snake_case_depends_on_is_ignored_as_graph_ignores_it",
    "test_the_batch_itself_needs_a_token_post_and_json",
    "test_the_tenant_is_the_batch_token_s",
]


async def emptied(server: RunningServer) -> None:
    """Every table of the server's database emptied, as the in-process tests start."""
    if server.database_url.startswith("postgresql"):
        await empty(server.database_url)
        return
    with sqlite3.connect(server.database_url.removeprefix("sqlite:///")) as db:
        for table in TABLES:
            db.execute(f"DELETE FROM {table}")  # names from the schema


@pytest.fixture(scope="module")
def server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root: Path = tmp_path_factory.mktemp(f"batch-{backend}")
    with serving(backend, root, "--workers", "2") as process:
        yield process


@pytest.fixture
def issuer(server: RunningServer) -> LocalIssuer:
    return LocalIssuer(load_or_create(server.home))


@pytest.fixture
async def client(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    await emptied(server)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}",
                                 timeout=30.0, trust_env=False) as c:
        yield c
