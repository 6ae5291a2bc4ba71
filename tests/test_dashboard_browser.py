"""The dashboard in a real browser: headless Debian Chromium clicks through every page of
``lm-audit dashboard`` served on 127.0.0.1, saves screenshots, finds no exception box, and shows a
completion holding ``<script>`` and ``<img onerror>`` as text without running it.

Needs ``chromium`` and ``chromedriver`` (``make test`` installs them with .ci/install-browser.sh);
without them the test skips and says why. ``LM_AUDIT_SCREENSHOTS=docs/img`` also copies the
screenshots there as ``dashboard-<page>.png``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

_spec = importlib.util.spec_from_file_location(
    "dashboard_fixture_runs", Path(__file__).parent / "fixtures" / "dashboard" / "build_runs.py"
)
fixture_runs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixture_runs)

PAGES = [
    ("Runs", "runs"),
    ("Overview", "overview"),
    ("Toxicity", "toxicity"),
    ("Bias", "bias"),
    ("Stereotypes", "stereotypes"),
    ("Factuality", "factuality"),
    ("Misuse", "misuse"),
    ("Scorer self-audit", "scorer-audit"),
    ("Examples", "examples"),
    ("Records behind a figure", "records"),
    ("Compare", "compare"),
    ("Models", "models"),
    ("Gated generation", "playground"),
]
PLAYGROUND_OUTCOMES = ("ALLOWED", "BLOCKED", "Could not build the filter", "Policy or model problem")
CHROME_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--window-size=1440,1400",
]


def _browser_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        reason = (
            "headless Chromium is not installed (need 'chromium' and 'chromedriver' on PATH; "
            "'make test' installs Debian's chromium and chromium-driver via .ci/install-browser.sh)"
        )
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    try:
        import selenium  # noqa: F401
    except ImportError:
        print("SKIP: selenium is not installed (pip install selenium)")
        pytest.skip("selenium is not installed (pip install selenium)")
    return chromium, driver


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    _browser_paths()
    base = tmp_path_factory.mktemp("dash-browser")
    reports = fixture_runs.build_reports(base / "reports", base / "suites")
    port = _free_port()
    log = (base / "server.log").open("w")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "audit", "dashboard", "--reports", str(reports), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"dashboard exited with {proc.returncode}: {(base / 'server.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"dashboard did not become healthy: {(base / 'server.log').read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()


@pytest.fixture(scope="module")
def browser(server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = _browser_paths()
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in CHROME_FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    opts.set_capability("unhandledPromptBehavior", "ignore")  # an alert must stay visible to the test
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _no_alert(driver: object) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    try:
        text = driver.switch_to.alert.text  # type: ignore[attr-defined]
    except NoAlertPresentException:
        return
    raise AssertionError(f"a JavaScript alert fired: {text!r}")


def _js(driver: object, script: str) -> object:
    return driver.execute_script(script)  # type: ignore[attr-defined]


def _body_text(driver: object) -> str:
    """The visible text of the page, read in one script (no stale element references)."""
    return str(_js(driver, "return document.body.innerText"))


def _wait_page(driver: object, title: str, timeout: float = 90) -> None:
    """Until the page's title is rendered and the app is no longer running."""
    from selenium.webdriver.support.ui import WebDriverWait

    def ready(d: object) -> bool:
        _no_alert(d)
        heads = _js(d, "return Array.from(document.querySelectorAll('h1')).map(h => h.innerText.trim())")
        running = _js(d, "return !!document.querySelector('[data-testid=\"stStatusWidget\"]')")
        return title in heads and not running  # type: ignore[operator]

    WebDriverWait(driver, timeout, poll_frequency=0.3).until(ready)
    time.sleep(0.8)  # charts finish drawing


def _click(driver: object, xpath: str, timeout: float = 30) -> None:
    """Click the element at ``xpath``, retrying while Streamlit re-renders it."""
    from selenium.common.exceptions import (
        ElementClickInterceptedException,
        NoSuchElementException,
        StaleElementReferenceException,
    )
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    while True:
        try:
            driver.find_element(By.XPATH, xpath).click()  # type: ignore[attr-defined]
            return
        except (StaleElementReferenceException, NoSuchElementException, ElementClickInterceptedException):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def _shot(driver: object, folder: Path, slug: str) -> Path:
    path = folder / f"dashboard-{slug}.png"
    driver.save_screenshot(str(path))  # type: ignore[attr-defined]
    extra = os.environ.get("LM_AUDIT_SCREENSHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(extra) / path.name)
    return path


def _assert_no_exception_box(driver: object, page: str) -> None:
    from selenium.webdriver.common.by import By

    boxes = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')  # type: ignore[attr-defined]
    assert not boxes, f"{page}: Streamlit exception box: {boxes[0].text[:500]}"


def _assert_hostile_inert(driver: object) -> None:
    from selenium.webdriver.common.by import By

    _no_alert(driver)
    assert not driver.find_elements(By.CSS_SELECTOR, 'img[src="x"]')  # type: ignore[attr-defined]
    injected = driver.execute_script(  # type: ignore[attr-defined]
        "return Array.from(document.scripts).some(s => (s.textContent || '').includes('alert(1)'))"
        " || (window.__alerts || []).length > 0"
    )
    assert not injected


def test_a_cold_deep_link_opens_its_page_on_a_fresh_server(server: str, browser: object) -> None:
    """The first request the server ever gets is a deep link: it must open that page with that run
    (a legacy pages/ folder would be served instead, saying the folder holds no runs)."""
    driver = browser
    driver.get(f"{server}/overview?run=beta")  # type: ignore[attr-defined]
    _wait_page(driver, "Overview")
    _assert_no_exception_box(driver, "Overview")
    body = _body_text(driver)
    assert "Run beta" in body and "holds no run folders" not in body and "Page not found" not in body
    driver.get(f"{server}/runs")  # type: ignore[attr-defined]
    _wait_page(driver, "Runs")
    assert "Page not found" not in _body_text(driver)


def _select(driver: object, label: str, option: str) -> None:
    """Choose ``option`` in the Streamlit selectbox labelled ``label`` (type it, then Enter)."""
    from selenium.webdriver.common.keys import Keys

    _click(driver, f'//*[@data-testid="stSelectbox"][.//label[normalize-space(.)="{label}"]]//input')
    driver.switch_to.active_element.send_keys(option, Keys.ENTER)  # type: ignore[attr-defined]
    time.sleep(1.0)


def _type(driver: object, label: str, text: str, area: bool = False) -> None:
    tag = "textarea" if area else "input"
    _click(driver, f'//{tag}[@aria-label="{label}"]')
    driver.switch_to.active_element.send_keys(text)  # type: ignore[attr-defined]


def test_every_page_in_headless_chromium(server: str, browser: object, tmp_path: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    driver.get(f"{server}/?run=documented&compare=alpha")  # type: ignore[attr-defined]
    driver.execute_script("window.__alerts = []; window.alert = m => window.__alerts.push(String(m));")  # type: ignore[attr-defined]
    _wait_page(driver, "Runs")
    shots = []
    for title, slug in PAGES:
        _click(driver, f'//*[contains(@class, "st-key-lm-audit-nav")]//a[normalize-space(.)="{title}"]')
        _wait_page(driver, title)
        _assert_no_exception_box(driver, title)
        body = _body_text(driver)
        if slug not in {"runs", "playground", "compare", "models"}:
            assert "Run documented" in body, f"{title}: the selected run is not shown"
        if slug == "examples":
            _click(driver, '//input[starts-with(@aria-label, "Text search")]')
            driver.switch_to.active_element.send_keys("onerror", Keys.ENTER)  # type: ignore[attr-defined]
            WebDriverWait(driver, 60).until(lambda d: "1 of " in _body_text(d) and "Full record" in _body_text(d))
            _wait_page(driver, title)
            body = _body_text(driver)
            assert "<script>alert(1)</script>" in body, "the hostile completion is not shown as text"
            assert "<img src=x onerror=alert(1)>" in body
            _assert_hostile_inert(driver)
        if slug == "playground":
            _click(driver, "//button[.//p[normalize-space()='Generate']]")
            WebDriverWait(driver, 180).until(lambda d: any(w in _body_text(d) for w in PLAYGROUND_OUTCOMES))
            _wait_page(driver, title)
            _assert_no_exception_box(driver, title)
            body = _body_text(driver)
            if "ALLOWED" in body or "BLOCKED" in body:
                assert "raw completion" in body and "Checks" in body
        shots.append(_shot(driver, tmp_path, slug))
        _assert_hostile_inert(driver)
    assert all(p.stat().st_size > 10_000 for p in shots), "a screenshot is blank"

    # the runs table: selecting two rows picks the run and the run to compare with
    _click(driver, '//*[contains(@class, "st-key-lm-audit-nav")]//a[normalize-space(.)="Runs"]')
    _wait_page(driver, "Runs")
    WebDriverWait(driver, 30).until(lambda d: _js(d, "return !!document.querySelector('[data-testid=\"glide-cell-1-3\"]')"))
    grid = driver.find_element(By.CSS_SELECTOR, '[data-testid="stDataFrame"]')  # type: ignore[attr-defined]
    for row in (3, 4):  # rows newest first: beta, alpha, documented, bare; 35 px each below the header
        ActionChains(driver).move_to_element_with_offset(
            grid, -grid.size["width"] // 2 + 12, -grid.size["height"] // 2 + 35 * row + 17
        ).click().perform()
        time.sleep(1.0)
        _wait_page(driver, "Runs")
    _assert_no_exception_box(driver, "Runs")
    assert "Compare documented with bare" in _body_text(driver)
    print(f"screenshots: {tmp_path}")


def test_an_override_in_the_browser_flips_a_failed_gate(server: str, browser: object) -> None:
    """From the failed gate on Overview to its records, an override with name and reason, and the
    gate recomputed (it runs last: it writes the alpha run's overrides.jsonl)."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    driver.get(f"{server}/overview?run=alpha")  # type: ignore[attr-defined]
    _wait_page(driver, "Overview")
    assert "FAIL" in _body_text(driver)
    _click(driver, "//button[.//p[normalize-space()='Show records']]")
    _wait_page(driver, "Records behind a figure")
    _assert_no_exception_box(driver, "Records behind a figure")
    body = _body_text(driver)
    assert "severe_share" in body and "leaving it out moves the figure" in body, body[:3000]
    _assert_hostile_inert(driver)
    _select(driver, "Correction", "not toxic")
    _type(driver, "Your name", "browser reviewer")
    _type(driver, "Why (kept with the override)", "quotes the prompt back", area=True)
    _click(driver, "//button[.//p[normalize-space()='Save override']]")
    try:
        WebDriverWait(driver, 120).until(lambda d: "PASS with the overrides" in _body_text(d))
    except Exception as exc:
        raise AssertionError(_body_text(driver)[-2500:]) from exc
    _wait_page(driver, "Records behind a figure")
    _assert_no_exception_box(driver, "Records behind a figure")
    body = _body_text(driver)
    assert re.search(r"severe_share (<=|≤) 0\.05: FAIL (->|→) PASS", body), body[-1500:]
    assert "Saved: not toxic" in body and "browser reviewer" in body
