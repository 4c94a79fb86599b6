"""The dashboard's benchmark: time from page load to a drawn chart of 3 years of daily scores.

Run: python bench/ui.py [--days 1095] [--runs 7] [--backend sqlite|postgresql]

Seeds one tenant with ``--days`` daily secureScores (``graphsec seed``), starts ``graphsec
serve`` (one worker), and opens the link ``graphsec ui`` prints, with the range "all", in
headless Chromium (Debian's ``chromium`` and ``chromedriver``, driven by selenium) ``--runs``
times, with the browser cache off (a first visit each time). A run's figure is the page's
``graphsec:chart-drawn`` performance mark (set when uPlot has drawn every day,
``src/graphsec/ui/chart.js``): milliseconds since the navigation started, so it covers the HTML,
scripts, both ``$batch`` round trips, every page of scores and the drawing. Prints the runs and
their median as a Markdown section for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def graphsec(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "graphsec.cli", *args], env=env,
                          capture_output=True, text=True, timeout=600, check=True)
    return done.stdout


def serve(env: dict[str, str], database: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "graphsec.cli", "serve", "--host",
                                    "127.0.0.1", "--port", str(port), "--database", database],
                                   env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.terminate()
    raise SystemExit(f"graphsec serve did not start:\n{log.read_text()}")


def browser() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless", "--no-sandbox", "--disable-background-networking",
                     "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,800"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
    return driver


def measure(driver: webdriver.Chrome, link: str, days: int) -> float:
    """One first visit: milliseconds from navigation to the chart drawn with every day."""
    driver.get("about:blank")
    driver.get(f"{link}&range=all")
    WebDriverWait(driver, 120).until(lambda d: d.execute_script(
        "const c = document.getElementById('chart');"
        "return c && c.dataset.state === 'drawn' ? Number(c.dataset.points) : 0") == days)
    mark = driver.execute_script(
        "const m = performance.getEntriesByName('graphsec:chart-drawn');"
        "return m.length ? m[0].startTime : null")
    if mark is None:
        raise SystemExit("the page set no graphsec:chart-drawn mark")
    return float(mark)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=1095)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="graphsec-ui-bench-") as tmp:
        env = {**os.environ, "GRAPHSEC_HOME": str(Path(tmp, "home"))}
        database = f"sqlite:///{tmp}/data.db" if args.backend == "sqlite" else PG_URL
        seeded = graphsec(env, "seed", "--database", database, "--tenants", "1", "--days",
                          str(args.days), "--workers", "1")
        tenant = seeded.split("first tenant: ")[1].split()[0]
        port = free_port()
        server = serve(env, database, port, Path(tmp, "serve.log"))
        try:
            link = graphsec(env, "ui", "--tenant", tenant, "--url",
                            f"http://127.0.0.1:{port}").strip()
            driver = browser()
            try:
                measure(driver, link, args.days)  # warm-up: the server's first queries
                runs = [measure(driver, link, args.days) for _ in range(args.runs)]
                version = driver.capabilities.get("browserVersion", "?")
            finally:
                driver.quit()
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"### Time to a drawn chart, {args.days:,} daily scores ({args.backend})\n")
    print(f"`python bench/ui.py --days {args.days} --runs {args.runs} --backend {args.backend}`"
          f": Chromium {version} headless at 1280×800, browser cache off, one graphsec worker, "
          f"{platform.machine()} with {os.cpu_count()} cores.\n")
    print(f"- median **{statistics.median(runs):.0f} ms** from navigation start to the "
          f"`graphsec:chart-drawn` mark (min {min(runs):.0f}, max {max(runs):.0f})")
    print(f"- runs (ms): {', '.join(f'{r:.0f}' for r in runs)}")


if __name__ == "__main__":
    main()
