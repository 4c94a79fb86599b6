"""Headless Chromium for the dashboard's tests and benchmark: Debian's ``chromium`` driven by
selenium through Debian's ``chromedriver`` (nothing is downloaded), with the console kept.

Without Chromium the browser tests skip, saying why, except on CI (``CI=true``), where that is
a failure: ``.ci/run`` installs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT_SECONDS = 20.0
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}
"""The viewports the dashboard must be usable at (CSS pixels), by the name screenshots carry."""


def require_chromium() -> None:
    """Skip (fail on CI) unless Debian's Chromium and ChromeDriver are installed."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (Path(p).exists() or shutil.which(p))]
    if not missing:
        return
    reason = (f"{', '.join(missing)} not installed (apt-get install -y chromium "
              "chromium-driver)")
    if os.environ.get("CI") == "true":
        pytest.fail(f"the browser tests must run on CI: {reason}")
    pytest.skip(reason)


@contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    """A headless Chromium with its console log readable (``console_errors``); quit after."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless", "--no-sandbox", "--disable-background-networking",
                     "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,800"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def viewport(driver: webdriver.Chrome, size: str) -> None:
    """Make the page's viewport exactly one of :data:`SIZES` (a phone's is a mobile one)."""
    width, height = SIZES[size]
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": size == "phone"})


def console_errors(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """The console's SEVERE entries since the last call (reading the log empties it)."""
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return [e for e in entries if e.get("level") == "SEVERE"]


def wait_for(driver: webdriver.Chrome, element_id: str, attribute: str, value: str) -> WebElement:
    """The element once its ``attribute`` equals ``value``."""
    element = driver.find_element(By.ID, element_id)
    WebDriverWait(driver, WAIT_SECONDS).until(lambda _: element.get_attribute(attribute) == value)
    return element


def screenshot_dir() -> Path:
    """Where the tests write screenshots: ``GRAPHSEC_SCREENSHOTS``, else ``build/screenshots``
    at the repository's root (CI keeps that folder)."""
    folder = Path(os.environ.get("GRAPHSEC_SCREENSHOTS")
                  or Path(__file__).resolve().parents[2] / "build" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def ui_link(env: dict[str, str], tenant: str, port: int, *flags: str) -> str:
    """The link ``graphsec ui`` prints for ``tenant`` on the server at ``port``."""
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "graphsec.cli", "ui", "--tenant", tenant,
         "--url", f"http://127.0.0.1:{port}", *flags],
        env=env, capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()


def seed(env: dict[str, str], database_url: str, days: int, *extra: str) -> str:
    """Seed the server's database with ``graphsec seed``; the first tenant's id."""
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "graphsec.cli", "seed", "--database", database_url,
         "--days", str(days), "--workers", "1", *extra],
        env=env, capture_output=True, text=True, timeout=120, check=True)
    return done.stdout.split("first tenant: ")[1].split()[0]
