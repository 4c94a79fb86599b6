"""The dashboard's look and edges in headless Chromium: screenshots at both sizes, keyboard and
labels, the dark theme, pages without a link or without data, sparse documents, PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.server import READ_WRITE
from tests.ui.browser import WAIT_SECONDS, console_errors, screenshot_dir, ui_link, viewport, wait_for
from tests.ui.pages import (
    PG_DAYS,
    SCORES,
    Site,
    change_state_through_the_page,
    choose,
    drawn_points,
    open_dashboard,
    points,
)

pytestmark = pytest.mark.browser


WIDER_THAN_THE_VIEWPORT = """return [...document.querySelectorAll('body *')]
  .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1
                 && e.offsetParent !== null && !e.closest('.scroll'))
  .map((e) => `${e.tagName}#${e.id}.${e.className}`)"""
"""The visible elements, outside the tables' own scrolling boxes, that reach past the viewport."""


def test_screenshots_of_each_view_at_both_sizes(site: Site, page: webdriver.Chrome) -> None:
    folder = screenshot_dir()
    link = site.link("--write")
    for size in ("desktop", "phone"):
        viewport(page, size)
        open_dashboard(page, link)
        for view in ("score", "categories", "controls", "users"):
            page.find_element(By.ID, f"tab-{view}").click()
            if view == "users":
                WebDriverWait(page, WAIT_SECONDS).until(lambda d: d.find_elements(
                    By.CSS_SELECTOR, "#users tbody tr"))
            width = page.execute_script("return document.documentElement.clientWidth")
            scroll = page.execute_script("return document.documentElement.scrollWidth")
            wide = page.execute_script(WIDER_THAN_THE_VIEWPORT)
            assert scroll <= width, f"{view} at {size} scrolls sideways ({scroll} > {width}): {wide}"
            path = Path(folder, f"{view}-{size}.png")
            assert page.save_screenshot(str(path))
            assert path.stat().st_size > 10_000


def test_views_and_controls_are_keyboard_reachable_and_labelled(site: Site,
                                                                page: webdriver.Chrome) -> None:
    open_dashboard(page, site.link("--write"))
    unlabelled = page.execute_script("""return [...document.querySelectorAll('select, input, textarea')]
        .filter((e) => !document.querySelector(`label[for="${e.id}"]`)).map((e) => e.id)""")
    assert unlabelled == []
    tab = page.find_element(By.ID, "tab-score")
    tab.click()
    tab.send_keys(Keys.ARROW_RIGHT)
    assert page.switch_to.active_element.get_attribute("id") == "tab-categories"
    assert page.find_element(By.ID, "tab-categories").get_attribute("aria-selected") == "true"
    assert page.find_element(By.ID, "view-categories").is_displayed()
    page.switch_to.active_element.send_keys(Keys.ARROW_RIGHT)
    assert page.find_element(By.ID, "view-controls").is_displayed()
    sort = page.find_element(By.CSS_SELECTOR, "#controls button[data-sort='title']")
    sort.send_keys(Keys.ENTER)
    assert page.find_element(By.XPATH, "//button[@data-sort='title']/..").get_attribute(
        "aria-sort") == "ascending"
    assert page.switch_to.active_element.get_attribute("data-sort") == "title"


def test_dark_theme_follows_the_system_setting(site: Site, page: webdriver.Chrome) -> None:
    background = "return getComputedStyle(document.body).backgroundColor"
    open_dashboard(page, site.link())
    light = page.execute_script(background)
    page.execute_cdp_cmd("Emulation.setEmulatedMedia", {
        "features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    try:
        dark = page.execute_script(background)
        assert dark != light
        wait_for(page, "chart", "data-state", "drawn")  # redrawn in the dark palette
        folder = screenshot_dir()
        assert page.save_screenshot(str(Path(folder, "score-desktop-dark.png")))
    finally:
        page.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def test_a_tenant_without_scores_gets_a_message_not_an_error(site: Site,
                                                            page: webdriver.Chrome) -> None:
    empty = "3f7c3df2-0000-4000-8000-000000000003"
    page.get("about:blank")
    page.get(ui_link(site.server.env, empty, site.server.port))
    wait_for(page, "chart", "data-state", "empty")
    assert page.find_element(By.ID, "status").text == "This tenant has no secure scores yet."
    assert page.find_element(By.ID, "message").is_displayed() is False


def test_on_postgresql_the_chart_counts_the_days_and_a_state_change_lands(
        pg_site: Site, page: webdriver.Chrome) -> None:
    open_dashboard(page, pg_site.link())
    assert points(page) == 90
    choose(page, "range", "all")
    WebDriverWait(page, WAIT_SECONDS).until(drawn_points(PG_DAYS))
    change_state_through_the_page(pg_site, page)


def test_without_a_link_the_page_says_where_to_get_one(site: Site, page: webdriver.Chrome) -> None:
    page.get(f"http://127.0.0.1:{site.server.port}/ui/")
    page.execute_script("sessionStorage.clear()")
    console_errors(page)  # what the load with an earlier test's token logged
    page.refresh()
    message = wait_for(page, "message", "data-kind", "expired")
    assert "needs the link" in message.text
    assert "graphsec ui --tenant" in message.text
    assert console_errors(page) == []  # no request was made without a token


def test_sparse_documents_are_drawn_without_errors(site: Site, page: webdriver.Chrome) -> None:
    sparse = "5b8d4ef3-0000-4000-8000-000000000005"
    headers = {"Authorization": f"Bearer {site.server.token(sparse, READ_WRITE)}"}
    vendor = {"provider": "SecureScore", "vendor": "Microsoft"}
    for body in ({"createdDateTime": "2026-10-30T06:00:00Z", "vendorInformation": vendor},
                 {"createdDateTime": "2026-10-31T06:00:00Z", "currentScore": 12.5,
                  "vendorInformation": vendor},
                 {"createdDateTime": "2026-11-01T06:00:00Z", "currentScore": 20.0, "maxScore": 80.0,
                  "controlScores": [{"controlName": "AdminMFA", "score": 20.0}],
                  "vendorInformation": vendor}):
        response = site.api.post(SCORES, json=body, headers=headers)
        assert response.status_code == 201, response.text
    page.get("about:blank")
    page.get(ui_link(site.server.env, sparse, site.server.port))
    wait_for(page, "chart", "data-state", "drawn")
    assert points(page) == 2  # the day without a currentScore is a gap, not a point
    assert "20.00 of 80" in page.find_element(By.ID, "score-summary").text
    page.find_element(By.ID, "tab-categories").click()
    row = page.find_element(By.CSS_SELECTOR, "#categories tbody tr")
    assert row.get_attribute("data-category") == "Uncategorised"
    assert row.get_attribute("data-points") == "20"
    page.find_element(By.ID, "tab-controls").click()
    assert page.find_element(By.ID, "control-count").text == "0 of 0 controls"
