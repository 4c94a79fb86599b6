"""What the dashboard's browser tests share: the seeded site, and steps on the page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.support.server import READ_WRITE, RunningServer
from tests.ui.browser import WAIT_SECONDS, ui_link, wait_for

DAYS = 1100
"""Days of scores seeded: more than one page of the page's ``$top=999``."""
PG_DAYS = 120
SCORES = "/v1.0/security/secureScores"
PROFILES = "/v1.0/security/secureScoreControlProfiles"


class Site:
    """The module's server, its seeded tenant and an API client with a ReadWrite token."""

    def __init__(self, server: RunningServer, tenant: str) -> None:
        self.server = server
        self.tenant = tenant
        self.api = httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=30, headers={
            "Authorization": f"Bearer {server.token(tenant, READ_WRITE)}"})

    def link(self, *flags: str) -> str:
        return ui_link(self.server.env, self.tenant, self.server.port, *flags)

    def get(self, url: str, **params: str) -> Any:
        response = self.api.get(url, params=params)
        assert response.status_code == 200, response.text
        return response.json()


def open_dashboard(driver: webdriver.Chrome, link: str) -> None:
    driver.get("about:blank")  # a fresh load, whatever the tab showed before
    driver.get(link)
    wait_for(driver, "chart", "data-state", "drawn")


def choose(driver: webdriver.Chrome, select_id: str, value: str) -> None:
    Select(driver.find_element(By.ID, select_id)).select_by_value(value)


def points(driver: webdriver.Chrome) -> int:
    return int(driver.find_element(By.ID, "chart").get_attribute("data-points") or -1)


def drawn_points(expected: int) -> Callable[[webdriver.Chrome], bool]:
    return lambda driver: points(driver) == expected


def control_rows(driver: webdriver.Chrome) -> list[str]:
    return [r.get_attribute("data-id") or "" for r in
            driver.find_elements(By.CSS_SELECTOR, "#controls tbody tr")]


def change_state_through_the_page(site: Site, page: webdriver.Chrome) -> None:
    open_dashboard(page, site.link("--write", "--identity", "ciso@contoso.example"))
    page.find_element(By.ID, "tab-controls").click()
    target = control_rows(page)[2]
    row = page.find_element(By.CSS_SELECTOR, f"#controls tr[data-id='{target}']")
    row.find_element(By.CSS_SELECTOR, "button.edit").click()
    choose(page, "edit-state", "Ignored")
    page.find_element(By.ID, "edit-assigned").clear()
    page.find_element(By.ID, "edit-assigned").send_keys("alex@contoso.example")
    page.find_element(By.ID, "edit-comment").send_keys("Covered by a third-party MFA product")
    page.find_element(By.ID, "edit-save").click()
    WebDriverWait(page, WAIT_SECONDS).until(lambda d: d.execute_script(
        "const r = document.querySelector(`#controls tr[data-id='${arguments[0]}']`);"
        "return r && r.dataset.state", target) == "Ignored")
    assert not page.find_element(By.ID, "edit").is_displayed()
    latest = site.get(f"{PROFILES}/{target}")["controlStateUpdates"][-1]
    assert latest["state"] == "Ignored"
    assert latest["assignedTo"] == "alex@contoso.example"
    assert latest["comment"] == "Covered by a third-party MFA product"
    assert latest["updatedBy"] == "ciso@contoso.example"
    shown = page.find_element(By.CSS_SELECTOR, f"#controls tr[data-id='{target}']").text
    assert "by ciso@contoso.example" in shown
    assert "alex@contoso.example" in shown
