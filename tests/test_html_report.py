"""The HTML audit report: valid HTML5, self-contained, no secret, and readable in a real browser (headless
Chromium: no horizontal scroll on a laptop or a phone, every plot decodes, no network request)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import run_cli_here

from riskaudit.reporting.html_report import render_html
from riskaudit.reporting.report import read_report

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "reports" / "demo.json"
CANARIES = REPO / "riskaudit" / "zoo" / "demo" / "canaries.jsonl"


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html") / "demo.html"
    policy = REPO / "examples" / "policy.toml"
    proc = run_cli_here("report", "html", str(DEMO), "--out", str(out), "--policy", str(policy))
    assert proc.returncode == 0, proc.stderr
    return out


def test_page_is_valid_html5_and_self_contained(page: Path) -> None:
    import html5lib

    text = page.read_text(encoding="utf-8")
    parser = html5lib.HTMLParser(strict=True)
    parser.parse(text)  # raises on the first parse error
    assert parser.errors == []
    assert "<script" not in text.lower()
    # nothing to fetch: every src / href is inline data or a fragment
    for attr in ("src=", "href="):
        for part in text.split(attr)[1:]:
            target = part[1:].split(part[0], 1)[0]
            assert target.startswith(("data:", "#")), target
    rep = read_report(DEMO)
    for m in rep.members:
        assert f"<td>{m.name}</td>" in text
    assert rep.schema_version in text and "PASS" in text


def test_no_canary_secret_or_training_text_in_the_page(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    secrets = [json.loads(line)["secret"].strip() for line in CANARIES.read_text().splitlines() if line.strip()]
    assert len(secrets) >= 100
    leaked = [s for s in secrets if s in text]
    assert leaked == []


def test_render_is_deterministic_and_traces_to_the_json(page: Path) -> None:
    import hashlib

    from riskaudit.reporting.policy import evaluate_policy, load_policy

    data = DEMO.read_bytes()
    rep = read_report(DEMO)
    policy = REPO / "examples" / "policy.toml"
    a = render_html(rep, data, evaluate_policy(rep, load_policy(policy)), str(policy))
    assert a == page.read_bytes().decode("utf-8")  # rendered a second time (the CLI wrote the first): the same page
    assert hashlib.sha256(data).hexdigest() in a


def _chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.mark.slow
def test_page_in_headless_chromium(page: Path, tmp_path: Path) -> None:
    found = _chromium()
    if found is None:
        pytest.skip(
            "no chromium / chromedriver on this machine (.ci/run installs Debian's chromium and chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = found
    opts = Options()
    opts.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    drv = webdriver.Chrome(service=Service(driver_path), options=opts)
    shots = {}
    try:
        for label, (w, h) in {"laptop": (1280, 800), "phone": (390, 844)}.items():
            drv.set_window_size(w, h)
            drv.get(page.as_uri())
            inner = drv.execute_script("return window.innerWidth")
            scroll = drv.execute_script("return document.documentElement.scrollWidth")
            assert scroll <= inner, f"{label}: page is {scroll}px wide in a {inner}px viewport"
            images = drv.execute_script(
                "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
            )
            assert images and all(ok and nw > 0 and nh > 0 for ok, nw, nh in images), images
            rows = drv.execute_script("return Array.from(document.querySelectorAll('#members tbody tr')).length")
            assert rows == len(read_report(DEMO).members)
            # a full-page screenshot: the window grown to the page's height
            height = drv.execute_script("return document.documentElement.scrollHeight")
            drv.set_window_size(w, min(height, 16000))
            shots[label] = tmp_path / f"demo-{label}.png"
            drv.save_screenshot(str(shots[label]))
        urls = []
        for entry in drv.get_log("performance"):
            msg = json.loads(entry["message"])["message"]
            if msg.get("method") == "Network.requestWillBeSent":
                urls.append(msg["params"]["request"]["url"])
        external = [u for u in urls if not u.startswith(("file://", "data:"))]
        assert external == [], external
    finally:
        drv.quit()
    for shot in shots.values():
        assert shot.stat().st_size > 10_000
    keep = REPO / ".screenshots"
    if keep.is_dir():  # for a person to look at: mkdir .screenshots before the run
        for shot in shots.values():
            shutil.copy(shot, keep / shot.name)


def test_report_html_errors_are_one_line(tmp_path: Path) -> None:
    from conftest import assert_one_line_error

    assert_one_line_error(run_cli_here("report", "html", str(tmp_path / "none.json")), "none.json")
    (tmp_path / "dir.html").mkdir()
    assert_one_line_error(run_cli_here("report", "html", str(DEMO), "--out", str(tmp_path / "dir.html")), "directory")
