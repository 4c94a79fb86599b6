"""The dashboard's views in real headless Chromium against a real server with a seeded tenant:
what the page draws is checked against what the API answers (fixtures: ``conftest.py``)."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from graphsec.auth.keys import load_or_create
from graphsec.auth.tokens import LocalIssuer
from tests.support.server import READ
from tests.ui.browser import WAIT_SECONDS, console_errors, wait_for
from tests.ui.pages import (
    DAYS,
    PROFILES,
    SCORES,
    Site,
    change_state_through_the_page,
    choose,
    control_rows,
    drawn_points,
    open_dashboard,
    points,
)

pytestmark = pytest.mark.browser


def test_chart_draws_one_point_per_stored_day_of_the_range(site: Site,
                                                           page: webdriver.Chrome) -> None:
    open_dashboard(page, site.link())
    assert points(page) == 90  # the default range
    stored = site.get(SCORES, **{"$count": "true", "$top": "1"})["@odata.count"]
    assert stored == DAYS
    for value, expected in (("30", 30), ("365", 365), ("all", stored), ("90", 90)):
        choose(page, "range", value)
        WebDriverWait(page, WAIT_SECONDS).until(drawn_points(expected))
        assert page.find_element(By.ID, "status").text == f"{expected} days"


def test_the_page_batches_selects_and_follows_next_links(site: Site,
                                                        page: webdriver.Chrome) -> None:
    open_dashboard(page, site.link())
    choose(page, "range", "all")  # more days than one page of $top=999
    WebDriverWait(page, WAIT_SECONDS).until(drawn_points(DAYS))
    fetched = [unquote(url) for url in page.execute_script(
        "return performance.getEntriesByType('resource')"
        ".filter((e) => e.initiatorType === 'fetch').map((e) => e.name)")]
    paths = [urlsplit(url).path for url in fetched]
    assert paths.count("/v1.0/$batch") == 3  # first load, range 90, range all
    pages = [url for url in fetched if "/security/secureScores" in url]
    assert len(pages) == 1  # the second page of "all", through its nextLink
    assert "$select=createdDateTime,currentScore,maxScore,averageComparativeScores" in pages[0]
    assert "$skiptoken=" in pages[0]


def test_link_token_leaves_the_address_bar_for_session_storage(site: Site,
                                                              page: webdriver.Chrome) -> None:
    link = site.link()
    open_dashboard(page, link)
    assert "#token" not in page.current_url
    assert page.current_url.endswith("/ui/")
    kept = page.execute_script("return sessionStorage.getItem('graphsec.token')")
    assert kept == link.split("#token=")[1]
    other = site.link("--write")  # a new link in the same tab: only its fragment differs
    page.get(other)
    WebDriverWait(page, WAIT_SECONDS).until(lambda d: "#token" not in d.current_url)
    wait_for(page, "chart", "data-state", "drawn")
    assert page.execute_script("return sessionStorage.getItem('graphsec.token')") == \
        other.split("#token=")[1]
    assert "read and write" in page.find_element(By.ID, "who").text
    page.refresh()  # the same tab keeps working without the token in its address
    wait_for(page, "chart", "data-state", "drawn")


def test_hovering_a_day_shows_its_figures(site: Site, page: webdriver.Chrome) -> None:
    open_dashboard(page, site.link())
    newest = site.get(SCORES, **{"$orderby": "createdDateTime desc", "$top": "1"})["value"][0]

    def hover_newest(driver: webdriver.Chrome) -> str:
        over = driver.find_element(By.CSS_SELECTOR, "#chart .u-over")
        ActionChains(driver).move_to_element_with_offset(over, over.size["width"] // 2 - 1,
                                                         0).perform()
        return str(driver.find_element(By.CSS_SELECTOR, "#chart .u-legend").text)

    # a redraw (the chart follows its width) replaces the elements: try again on a fresh one
    legend = WebDriverWait(page, WAIT_SECONDS, ignored_exceptions=[
        StaleElementReferenceException]).until(hover_newest)
    assert f"{newest['currentScore']:.2f}" in legend
    assert newest["createdDateTime"][:10] in legend
    share = 100 * newest["currentScore"] / newest["maxScore"]
    assert f"({share:.1f} %)" in legend  # the share of maxScore beside the points
    choose(page, "scale", "percent")  # the chart as shares of each day's maxScore
    wait_for(page, "chart", "data-state", "drawn")
    legend = WebDriverWait(page, WAIT_SECONDS, ignored_exceptions=[
        StaleElementReferenceException]).until(hover_newest)
    assert f"Score{share:.1f} %" in " ".join(legend.split())
    assert points(page) == 90


def by_category(score: dict[str, Any]) -> dict[str, float]:
    sums: dict[str, float] = defaultdict(float)
    for control in score["controlScores"]:
        sums[control["controlCategory"]] += control["score"]
    return sums


def test_category_figures_equal_what_the_api_returns(site: Site, page: webdriver.Chrome) -> None:
    open_dashboard(page, site.link())
    choose(page, "range", "30")
    WebDriverWait(page, WAIT_SECONDS).until(lambda d: points(d) == 30)
    page.find_element(By.ID, "tab-categories").click()
    scores = site.get(SCORES, **{"$orderby": "createdDateTime desc", "$top": "30",
                                 "$select": "createdDateTime,controlScores"})["value"]
    newest, start = by_category(scores[0]), by_category(scores[-1])
    rows = page.find_elements(By.CSS_SELECTOR, "#categories tbody tr")
    shown = {r.get_attribute("data-category"): r for r in rows}
    assert set(shown) == set(newest)
    for name, value in newest.items():
        cells = shown[name].find_elements(By.CSS_SELECTOR, "td")
        assert cells[0].text == f"{value:.2f}"
        assert float(shown[name].get_attribute("data-change") or "nan") == pytest.approx(
            value - start[name])
    assert scores[-1]["createdDateTime"][:10] in page.find_element(By.ID, "categories-caption").text


def test_filtering_and_sorting_the_controls_table(site: Site, page: webdriver.Chrome) -> None:
    open_dashboard(page, site.link())
    page.find_element(By.ID, "tab-controls").click()
    profiles = site.get(PROFILES, **{"$top": "500"})["value"]
    assert sorted(control_rows(page)) == sorted(p["id"] for p in profiles)
    choose(page, "control-category", "Identity")
    identity = {p["id"] for p in profiles if p["controlCategory"] == "Identity"}
    assert 0 < len(identity) < len(profiles)
    assert set(control_rows(page)) == identity
    page.find_element(By.ID, "control-search").send_keys("multifactor")
    wanted = {p["id"] for p in profiles if p["controlCategory"] == "Identity"
              and "multifactor" in p["title"].lower()}
    assert wanted
    assert set(control_rows(page)) == wanted
    assert page.find_element(By.ID, "control-count").text == f"{len(wanted)} of {len(profiles)} controls"
    choose(page, "control-category", "")
    page.find_element(By.ID, "control-search").clear()
    page.find_element(By.CSS_SELECTOR, "#controls button[data-sort='maxScore']").click()
    by_max = sorted(profiles, key=lambda p: (p["maxScore"]))
    shown = control_rows(page)
    assert [next(p["maxScore"] for p in profiles if p["id"] == i) for i in shown] == \
        [p["maxScore"] for p in by_max]


def test_a_state_change_through_the_page_is_visible_through_the_api(
        site: Site, page: webdriver.Chrome) -> None:
    change_state_through_the_page(site, page)


def test_a_read_only_link_offers_no_change(site: Site, page: webdriver.Chrome) -> None:
    open_dashboard(page, site.link())
    page.find_element(By.ID, "tab-controls").click()
    assert control_rows(page)
    assert page.find_elements(By.CSS_SELECTOR, "#controls button.edit") == []
    assert "read only" in page.find_element(By.ID, "who").text


def test_users_view_lists_the_beta_profiles_riskiest_first(site: Site,
                                                          page: webdriver.Chrome) -> None:
    open_dashboard(page, site.link())
    page.find_element(By.ID, "tab-users").click()
    users = site.get("/beta/security/userSecurityProfiles", **{"$top": "500"})["value"]
    WebDriverWait(page, WAIT_SECONDS).until(lambda d: len(
        d.find_elements(By.CSS_SELECTOR, "#users tbody tr")) == len(users))
    rows = page.find_elements(By.CSS_SELECTOR, "#users tbody tr")
    risks = [float(r.find_elements(By.CSS_SELECTOR, "td")[0].text) for r in rows]
    assert risks == sorted((float(u["riskScore"]) for u in users), reverse=True)
    first = next(u for u in users if u["id"] == rows[0].get_attribute("data-id"))
    assert first["accounts"][0]["signinName"] in rows[0].text


def test_an_expired_link_says_so_and_names_the_command(site: Site,
                                                      page: webdriver.Chrome) -> None:
    issuer = LocalIssuer(load_or_create(site.server.home))
    stale = issuer.mint(site.tenant, [READ], expires_in=8 * 3600, now=int(time.time()) - 9 * 3600)
    page.get(f"http://127.0.0.1:{site.server.port}/ui/#token={stale}")
    message = wait_for(page, "message", "data-kind", "expired")
    assert "expired" in message.text
    assert f"graphsec ui --tenant {site.tenant}" in message.text
    # the 401 itself is the one entry Chromium logs (as a failed resource), nothing else
    errors = console_errors(page)
    assert errors
    assert all("401" in e["message"] for e in errors), errors
