"""The dashboard's browser fixtures: one seeded server (SQLite; PostgreSQL for the tests that
ask for ``pg_site``) and one headless Chromium per module; ``page`` checks the console after each
test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium import webdriver

from tests.support.server import serving
from tests.ui.browser import chromium, console_errors, require_chromium, seed, viewport
from tests.ui.pages import DAYS, PG_DAYS, Site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_chromium()
    with serving("sqlite", tmp_path_factory.mktemp("ui")) as server:
        tenant = seed(server.env, server.database_url, DAYS, "--tenants", "2", "--users", "12")
        built = Site(server, tenant)
        yield built
        built.api.close()


@pytest.fixture(scope="module")
def pg_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The same on PostgreSQL (a fresh database), with fewer days: for the tests that write."""
    require_chromium()
    with serving("postgresql", tmp_path_factory.mktemp("ui-pg")) as server:
        tenant = seed(server.env, server.database_url, PG_DAYS, "--tenants", "2", "--users", "3")
        built = Site(server, tenant)
        yield built
        built.api.close()


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[webdriver.Chrome]:
    with chromium() as driver:
        yield driver


@pytest.fixture
def page(browser: webdriver.Chrome) -> Iterator[webdriver.Chrome]:
    """The browser at desktop size; after the test, its console must hold no error."""
    viewport(browser, "desktop")
    console_errors(browser)
    yield browser
    assert console_errors(browser) == []
