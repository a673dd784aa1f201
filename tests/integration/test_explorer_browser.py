"""The forecast explorer in a real headless browser, on a worker fed by the simulator.

A worker (with ``TRENDCAST_EXPLORER=true``) consumes simulated events and
publishes forecasts and alerts; an independent consumer reads those topics;
``trendcast explore`` serves the page, and Debian's chromium (through
Selenium and Debian's chromedriver, nothing downloaded) searches a SKU and
must show the numbers the topics hold. The screenshot of the chart must not
be blank.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict
from datetime import datetime, timezone

import numpy as np
import pytest
from kafka_helpers import json_values, read_topic, wait_for

from stream_app.sim import Simulator
from stream_app.worker.broker import free_port
from stream_app.worker.send import send_events, topic_names

pytestmark = pytest.mark.integration

DAY = 86_400_000
D0 = 20_000
DAYS = 42
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def _date(day: int) -> str:
    return datetime.fromtimestamp(day * 86_400, timezone.utc).strftime("%Y-%m-%d")


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM  # with both paths given, Selenium Manager has nothing to look up or download
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1200,2000"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)


def _published(run, skus: set[str], last_as_of: int) -> tuple[list[dict], list[dict]] | None:
    """Forecasts and alerts once every SKU that has forecasts got its forecast of the last closed day."""
    forecasts = json_values(read_topic(run.bootstrap, run.topic("forecasts"), idle_s=1.0))
    newest: dict[str, dict] = {}
    for f in forecasts:
        if f["sku"] not in newest or f["as_of"] >= newest[f["sku"]]["as_of"]:
            newest[f["sku"]] = f
    if not newest or not all(f["as_of"] == last_as_of or not f["active"] for f in newest.values()):
        return None
    return forecasts, json_values(read_topic(run.bootstrap, run.topic("alerts"), idle_s=1.0))


def _expected(forecasts: list[dict], sku: str) -> dict:
    """What the page must show for ``sku``, worked out here from the forecasts topic alone."""
    mine = {f["as_of"] // DAY: f for f in forecasts if f["sku"] == sku}
    latest = mine[max(mine)]
    first_closed, last_closed = min(mine) - 1, max(mine) - 1
    sold = {d - 1: f["observed"]["units_1d"] for d, f in mine.items()}
    due7 = sorted(d for d, f in mine.items() if f["active"] and d + 6 <= last_closed)
    newest_due = due7[-1]
    return {"latest": latest, "days": last_closed - first_closed + 1, "due7": len(due7),
            "newest_due": (_date(newest_due - 1), sum(sold.get(d, 0.0) for d in range(newest_due, newest_due + 7)))}


def test_explorer_page_shows_what_the_topics_hold(make_run, tmp_path, monkeypatch):
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.skip("needs Debian's chromium and chromium-driver (.ci/run installs them)")
    pytest.importorskip("selenium", reason="needs selenium (the dev extra)")
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager, should it ever run, must not go online
    t0 = time.monotonic()
    run = make_run(explorer=True)
    sim = Simulator(16, DAYS, D0 * DAY, seed=5, orders_per_sku=800.0)
    worker = run.start_worker()
    items = itertools.chain((("catalog", r) for r in sim.catalog()), sim.events())
    asyncio.run(send_events(run.bootstrap, items, topic_names(run.settings)))
    # The last simulated day stays open (nothing after it): forecasts run up to its start.
    last_as_of = (D0 + DAYS - 1) * DAY
    forecasts, alerts = wait_for(lambda: _published(run, set(sim.skus), last_as_of), 120,
                                 "forecasts of the last closed day", poll=1.0, on_fail=run.logs)
    by_sku = defaultdict(list)
    for a in alerts:
        by_sku[a["sku"]].append(a)
    # The SKU with the most stage changes (then the most units): the richest page.
    units = defaultdict(float)
    for f in forecasts:
        units[f["sku"]] += f["observed"]["units_1d"]
    sku = max(by_sku, key=lambda s: (len(by_sku[s]), units[s]))
    want = _expected(forecasts, sku)

    port = free_port()
    log = open(tmp_path / "explore.log", "wb")
    explore = subprocess.Popen([sys.executable, "-m", "stream_app.cli", "explore", "--port", str(port)],
                               env=run.env, stdout=log, stderr=log)
    try:
        url = f"http://127.0.0.1:{port}/"
        read_all = f"read {len(forecasts):,} forecasts, {len(alerts):,} alerts, {len(sim.skus):,} catalog records"
        wait_for(lambda: read_all in _get(url)[1], 60, f"the explorer to have {read_all}",
                 on_fail=lambda: (tmp_path / "explore.log").read_text() + _get(url)[1][-500:])
        # The worker serves the same page on its metrics port.
        code, worker_page = _get(f"http://127.0.0.1:{worker.port}/explore/?sku={sku}")
        assert code == 200 and _cells(worker_page) == _numbers(want["latest"]), worker_page[-800:]
        _check_in_browser(url, sku, want, by_sku[sku], sorted(by_sku), tmp_path)
        # A second explorer on the same port: one line that says so, no traceback.
        taken = subprocess.run([sys.executable, "-m", "stream_app.cli", "explore", "--port", str(port)],
                               env=run.env, capture_output=True, text=True, timeout=60)
        assert taken.returncode == 2 and taken.stderr.strip().count("\n") == 0, taken.stderr
        assert f"cannot serve on 127.0.0.1:{port}" in taken.stderr and "--port" in taken.stderr
    finally:
        explore.terminate()
        explore.wait(10)
        log.close()
    print(f"explorer browser test: {time.monotonic() - t0:.1f} s")


def _numbers(f: dict) -> dict[tuple[str, str], str]:
    return {(h, q): f"{v:.1f}" for h, qs in f["horizons"].items() for q, v in qs.items()}


def _cells(html: str) -> dict[tuple[str, str], str]:
    return {(h, q): v for h, q, v in re.findall(r'data-h="(\d+)" data-q="(p\d0)">([\d.]+)<', html)}


def _check_in_browser(url: str, sku: str, want: dict, sku_alerts: list[dict], alert_skus: list[str], tmp_path) -> None:
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _browser()
    try:
        wait = WebDriverWait(driver, 15)
        driver.get(url)
        box = driver.find_element(By.NAME, "sku")
        box.send_keys(sku, Keys.ENTER)
        wait.until(ec.presence_of_element_located((By.ID, "fan")))
        assert driver.find_element(By.ID, "sku").text == sku
        latest = want["latest"]
        shown = {(c.get_attribute("data-h"), c.get_attribute("data-q")): c.text
                 for c in driver.find_elements(By.CSS_SELECTOR, "#latest td[data-h]")}
        assert shown == _numbers(latest)
        assert driver.find_element(By.ID, "as-of").text == _date(latest["as_of"] // DAY - 1)
        assert driver.find_element(By.ID, "stage").text == latest["stage"]
        # The chart: one point per day sold, and the fan of the three horizons.
        sold = driver.find_element(By.CSS_SELECTOR, "#fan polyline.sold")
        assert int(sold.get_attribute("data-days")) == want["days"]
        assert len(driver.find_elements(By.CSS_SELECTOR, "#fan circle.sold-day")) == want["days"]
        assert {c.get_attribute("data-h") for c in driver.find_elements(By.CSS_SELECTOR, "#fan .fan-point")} == \
            {"1", "7", "14"}
        # Stage history: the SKU's alerts, in order, as the alerts topic holds them.
        rows = driver.find_elements(By.CSS_SELECTOR, "#stage-history tr.alert")
        got = [tuple(r.find_element(By.CLASS_NAME, c).text for c in ("day", "from", "to")) for r in rows]
        assert got == [(_date(a["as_of"] // DAY - 1), a["previous_stage"] or "—", a["stage"])
                       for a in sorted(sku_alerts, key=lambda a: a["as_of"])]
        # Past 7-day forecasts against what then sold, summed here from the forecasts' daily units.
        assert int(driver.find_element(By.ID, "past-summary").get_attribute("data-n")) == want["due7"]
        first = driver.find_element(By.CSS_SELECTOR, "#past-table tr.outcome")
        day, actual = want["newest_due"]
        assert first.find_elements(By.TAG_NAME, "td")[0].text == day
        assert first.find_element(By.CLASS_NAME, "actual").text == f"{actual:.1f}"

        chart = tmp_path / "fan.png"
        driver.find_element(By.ID, "fan").screenshot(str(chart))
        driver.save_screenshot(str(tmp_path / "explorer.png"))
        pixels = np.asarray(Image.open(chart).convert("RGB"), dtype=np.int32)
        inked = int((pixels.sum(axis=2) < 3 * 235).sum())  # not white nor near-white background
        assert inked > 0.03 * pixels.shape[0] * pixels.shape[1], f"the chart looks blank ({inked} inked pixels)"

        # The front page lists the latest alerts; a click opens that SKU.
        driver.get(url)
        link = driver.find_element(By.CSS_SELECTOR, "#alerts a.sku")
        target = link.text
        assert target in alert_skus
        link.click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "sku"), target))
        # A SKU nobody sells: a clear message, not an error page.
        box = driver.find_element(By.NAME, "sku")
        box.clear()
        box.send_keys("no-such-sku", Keys.ENTER)
        wait.until(ec.presence_of_element_located((By.ID, "not-found")))
        assert "no-such-sku" in driver.find_element(By.ID, "not-found").text
        if os.environ.get("TRENDCAST_EXPLORER_SCREENSHOT"):  # how docs/img/explorer.png is made
            shutil.copy(tmp_path / "explorer.png", os.environ["TRENDCAST_EXPLORER_SCREENSHOT"])
    finally:
        driver.quit()
