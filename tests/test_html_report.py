"""The HTML audit report: valid HTML5, self-contained, no secret, and readable in a real browser (headless
Chromium: no horizontal scroll on a laptop or a phone, every plot decodes, no network request)."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from html.parser import HTMLParser
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


@dataclass
class _TableSeen:
    id: str
    css: str
    scroll: dict[str, str] | None  # the attributes of the enclosing div.scroll (and "hint": its hint's text)
    cells: list[str] = field(default_factory=list)


class _Page(HTMLParser):
    """The page as the static tests need it: every id, the table of contents' links, every table with the scroll
    container around it, and every cell's text by table."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: list[str] = []
        self.toc: list[str] = []
        self.headings: list[tuple[str, str]] = []  # (tag, id) of h2 / h3 / section / details with an id
        self.tables: list[_TableSeen] = []
        self.viewport = ""
        self._stack: list[tuple[str, dict[str, str]]] = []
        self._cell: list[str] | None = None
        self._hint: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "meta" and a.get("name") == "viewport":
            self.viewport = a.get("content", "")
        if tag in ("meta", "img", "br", "link"):
            return
        if "id" in a:
            self.ids.append(a["id"])
            if tag in ("section", "h2", "h3", "details"):
                self.headings.append((tag, a["id"]))
        in_toc = any(t == "nav" and "toc" in at.get("class", "") for t, at in self._stack)
        if tag == "a" and in_toc:
            self.toc.append(a.get("href", ""))
        if tag == "table":
            scroll = next((at for t, at in reversed(self._stack) if t == "div" and at.get("class") == "scroll"), None)
            self.tables.append(_TableSeen(a.get("id", ""), a.get("class", ""), scroll))
        if tag == "td":
            self._cell = []
        if tag == "div" and a.get("class") == "scroll-hint":
            self._hint = []
            scroll = next((at for t, at in reversed(self._stack) if t == "div" and at.get("class") == "scroll"), None)
            if scroll is not None:
                scroll["hint"] = "pending"
        self._stack.append((tag, a))

    def handle_endtag(self, tag: str) -> None:
        while self._stack:
            t, a = self._stack.pop()
            if t == "td" and self._cell is not None:
                self.tables[-1].cells.append("".join(self._cell).strip())
                self._cell = None
            if t == "div" and a.get("class") == "scroll-hint" and self._hint is not None:
                scroll = next((at for tt, at in reversed(self._stack) if tt == "div" and at.get("class") == "scroll"))
                scroll["hint"] = "".join(self._hint)
                self._hint = None
            if t == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._hint is not None:
            self._hint.append(data)


@pytest.fixture(scope="module")
def parsed(page: Path) -> _Page:
    return _Page(page.read_text(encoding="utf-8"))


def test_table_of_contents_links_every_section(parsed: _Page) -> None:
    assert parsed.toc, "no table of contents (nav.toc)"
    assert len(parsed.ids) == len(set(parsed.ids)), "duplicate ids"
    ids = set(parsed.ids)
    dangling = [h for h in parsed.toc if not h.startswith("#") or h[1:] not in ids]
    assert dangling == []
    linked = {h[1:] for h in parsed.toc}
    # every section, heading and collapsible part with an id is in the contents
    assert [i for _, i in parsed.headings if i not in linked] == []
    rep = read_report(DEMO)
    expected = {"summary", "headline", "flags", "family", "run"}
    for p in rep.probes:
        expected |= {f"probe-{p.id}", f"probe-{p.id}-values", f"probe-{p.id}-analysis"}
    assert expected <= linked, expected - linked
    # the contents come first: before the summary
    assert parsed.ids.index("contents") < parsed.ids.index("summary")


def test_every_table_scrolls_in_a_box_with_a_visible_hint(parsed: _Page) -> None:
    assert "width=device-width" in parsed.viewport
    assert len(parsed.tables) > 5
    for t in parsed.tables:
        box = t.scroll
        assert box is not None, f"table {t.id or t.css} is not in a div.scroll"
        assert box.get("role") == "region" and box.get("tabindex") == "0" and box.get("aria-label"), box
        assert "scroll" in box.get("hint", ""), f"table {t.id or t.css}: no scroll hint"


def test_every_number_on_the_page_is_in_the_shared_format(parsed: _Page) -> None:
    from test_numbers import one_format

    from riskaudit.reporting.lookup import find_metric, member_analysis, representative_members
    from riskaudit.reporting.render import headline_metrics

    group = re.compile(r"\S+ \[\S+, \S+\]")
    groups = [g for t in parsed.tables for c in t.cells for g in group.findall(c)]
    assert len(groups) > 500
    assert [g for g in groups if not one_format(g)] == []
    from riskaudit.numbers import estimate

    # and exactly the shared formatter's text: every member's headline values, every growth in the summary
    rep = read_report(DEMO)
    members = representative_members(rep)
    metrics_tables = [t for t in parsed.tables if t.css == "metrics"]
    heads = headline_metrics(rep)
    assert len(metrics_tables) == len(heads)
    for t, (probe, metrics) in zip(metrics_tables, heads.items(), strict=True):
        cells = t.cells
        width = 1 + len(metrics)
        for i, m in enumerate(members):
            row = cells[i * width : (i + 1) * width]
            assert row[0] == m.name
            for (name, _), cell in zip(metrics, row[1:], strict=True):
                r = find_metric(m, probe, name)
                assert cell == ("–" if r is None else estimate(r.value, r.ci_low, r.ci_high)), (probe, name, m.name)
    risks = next(t for t in parsed.tables if t.id == "risks")
    growth_cells = risks.cells[3::4]
    expected = []
    for probe, metrics in heads.items():
        for name, _ in metrics:
            a = member_analysis(rep, probe, name)
            g = None if a is None else a.growth
            expected.append(
                "–" if g is None or g.slope is None else estimate(g.slope, g.slope_ci_low, g.slope_ci_high, signed=True)
            )
    assert [c.split(" (Theil")[0] for c in growth_cells] == expected


def test_section_ids_are_safe_and_unique() -> None:
    from riskaudit.reporting.html_report import _anchor

    taken: set[str] = set()
    assert _anchor(taken, "probe", "memorization") == "probe-memorization"
    assert _anchor(taken, "probe", "my probe/v2") == "probe-my-probe-v2"
    assert _anchor(taken, "probe", "my probe.v2") == "probe-my-probe-v2-2"


def _chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


# per div.scroll: [overflow in px, whether its hint is the element on top at the hint's centre, hint width]
_HINTS_JS = """
return Array.from(document.querySelectorAll('div.scroll')).map(box => {
  box.closest('details')?.setAttribute('open', '');
  const hint = box.querySelector('.scroll-hint .hint');
  hint.scrollIntoView({block: 'center', inline: 'nearest'});
  const r = hint.getBoundingClientRect();
  const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  return [box.scrollWidth - box.clientWidth, top === hint, r.width];
});
"""


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
            # the scroll hint shows exactly on the tables that overflow their box (and not once scrolled to the end)
            hints = drv.execute_script(_HINTS_JS)
            assert len(hints) == drv.execute_script("return document.querySelectorAll('table').length"), hints
            for overflow, visible, hint_width in hints:
                if overflow == 0 or overflow >= hint_width:
                    assert visible == (overflow > 0), (label, hints)
            risks = hints[0]  # the headline table: cut on a phone (the issue), whole on a laptop
            assert risks[0] >= risks[2] and risks[1] if label == "phone" else risks[0] == 0 and not risks[1], risks
            if label == "phone":
                drv.execute_script("const s = document.querySelector('div.scroll'); s.scrollLeft = s.scrollWidth;")
                assert drv.execute_script(_HINTS_JS)[0][1] is False
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
