"""verify.gate.reports: JSON (the documented schema), JUnit (parsed with xml.etree), Markdown
and the self-contained HTML page, which a headless Chromium renders and the test looks at as a
person would: the verdict table, the counterexample tables and the module pictures laid out,
filled in, decoded and painted (skipped when no Chromium is installed; in CI (CI=true) it fails)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from tests.gate.conftest import gate
from verify.gate import GateRun

PROPERTY_KEYS = {"id", "name", "kind", "family", "row", "label", "model", "spec", "spec_sha256", "description",
                 "require", "timeout", "status", "verdict", "method", "margin", "seconds", "reason",
                 "counterexample", "cache", "certificate", "details"}
FAMILY_KEYS = {"id", "name", "model", "data", "eps", "clip", "rows", "verified", "falsified", "unknown",
               "verified_rate", "falsified_rate", "unknown_rate", "require", "min_verified_rate", "needed",
               "status", "seconds", "timeout", "description"}


@pytest.fixture
def failing(example: Path, tmp_path: Path) -> tuple[GateRun, Path]:
    """The example with class0-robust violated, a description to escape, reports in tmp_path/rep."""
    shutil.copyfile(example / "specs/tiny_robust_class0_wide.vnnlib", example / "specs/tiny_robust_class0.vnnlib")
    manifest = example / "verify.toml"
    manifest.write_text(manifest.read_text().replace(
        'description = "class 1 is robust near its centre (VNN-LIB 2.0)"', 'description = "<script>x</script> & co"'))
    run = gate(example, report=tmp_path / "rep", junit=tmp_path / "junit-only.xml")
    assert run.exit_code == 1
    return run, tmp_path / "rep"


def test_json_schema(failing: tuple[GateRun, Path]) -> None:
    run, rep = failing
    data = json.loads((rep / "report.json").read_text())
    assert data == json.loads(json.dumps(run.report))
    assert data["format"] == "verify-gate-report" and data["version"] == 1 and data["tool"].startswith("verify ")
    assert (data["outcome"], data["exit_code"]) == ("fail", 1) and data["seconds"] > 0
    assert set(data["counts"]) == {"total", "verified", "falsified", "unknown", "cached", "requirements_failed"}
    assert data["models"][0]["name"] == "tiny" and len(data["models"][0]["sha256"]) == 64
    assert data["models"][0]["n_inputs"] == 4 and data["models"][0]["n_outputs"] == 3
    for p in data["properties"]:
        assert set(p) == PROPERTY_KEYS, p["id"]
        assert p["verdict"] in ("verified", "falsified", "unknown") and p["status"] in ("pass", "fail", "unknown")
        if p["verdict"] == "verified":
            assert (rep / p["certificate"]["file"]).is_file() and p["certificate"]["kinds"] == ["input-split"]
    assert set(data["families"][0]) == FAMILY_KEYS
    assert data["failures"] == [{"id": "class0-robust", "status": "fail",
                                 "message": "class0-robust: falsified; requires verified"}]
    assert data["baseline"] is None and set(data["timings"]) == {"plan", "checks", "total_before_reports"}


def test_junit_parses_with_one_test_case_per_property(failing: tuple[GateRun, Path], tmp_path: Path) -> None:
    run, rep = failing
    assert (tmp_path / "junit-only.xml").read_text() == (rep / "junit.xml").read_text()
    root = ET.parse(rep / "junit.xml").getroot()
    assert root.tag == "testsuites" and root.get("tests") == "8" and root.get("failures") == "1"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"properties", "family points-eps0.02"}
    cases = {c.get("name"): c for c in root.iter("testcase")}
    ids = {p["id"] for p in run.report["properties"]}
    assert set(cases) == ids | {"points-eps0.02 rate"}
    (failure,) = root.iter("failure")
    assert failure.get("type") == "falsified" and failure.get("message") == "falsified; requires verified"
    assert cases["class0-robust"].find("failure") is failure
    assert "x = [" in failure.text and float(cases["class0-robust"].get("time")) >= 0
    props = {p.get("name"): p.get("value") for p in cases["class1-robust"].iter("property")}
    assert props["verdict"] == "verified" and props["require"] == "verified" and float(props["margin"]) > 0
    assert suites["properties"].get("tests") == "4" and suites["family points-eps0.02"].get("tests") == "4"


def test_markdown(failing: tuple[GateRun, Path]) -> None:
    _, rep = failing
    md = (rep / "report.md").read_text()
    assert md.startswith("## verify gate: FAIL\n")
    assert "| class0-robust | tiny | verified | **falsified** | - |" in md
    assert "| points-eps0.02 | tiny | 0.02 | 3 | 3 | 0 | 0 | 100.0% | 3 (1) | pass |" in md
    assert "- **fail**: class0-robust: falsified; requires verified" in md
    assert "<details><summary>class0-robust: counterexample" in md and "x = [" in md


def test_html_is_self_contained(failing: tuple[GateRun, Path]) -> None:
    run, rep = failing
    page = (rep / "report.html").read_text()
    assert '<table id="verdict-table">' in page
    for p in run.report["properties"]:
        assert p["id"] in page
    assert page.count("data:image/svg+xml;base64,") == 4  # one module picture per named property
    assert "<script>x</script>" not in page and "&lt;script&gt;x&lt;/script&gt; &amp; co" in page
    for external in ("<script", "<link", 'src="http', "url(http", "@import"):
        assert external not in page
    assert 'href="certificates/class1-robust.json"' in page and 'id="cex-p-class0-robust"' in page


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


NO_BROWSER = ("no Chromium binary (chromium, chromium-browser, google-chrome) on PATH; "
              "`bash .ci/ensure_chromium.sh` installs it (as root on Debian/Ubuntu)")


@pytest.fixture
def browser() -> str | None:
    """A headless-capable Chromium, or skip (before the gate fixture runs); None in CI (CI=true),
    where the test then fails: the page must be looked at there."""
    path = _chromium()
    if path is None and not _in_ci():
        pytest.skip(NO_BROWSER)
    return path


#: Injected into a copy of the report: after every image has loaded (or failed), it writes what a
#: person would see (sizes, visibility, cell texts, image sizes) as JSON into a hidden <pre>.
PROBE = """<script>
window.addEventListener("load", () => {
  const box = (el) => {
    const r = el.getBoundingClientRect(), s = getComputedStyle(el);
    return {x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height,
            shown: s.display !== "none" && s.visibility === "visible" && Number(s.opacity) > 0};
  };
  const table = (t) => t && {box: box(t), head: [...t.tHead.rows[0].cells].map((c) => c.innerText.trim()),
    rows: [...t.tBodies[0].rows].map((r) => ({box: box(r), cells: [...r.cells].map((c) => c.innerText.trim()),
                                              boxes: [...r.cells].map(box)}))};
  const after = (h) => {  // the tables between a heading and the next heading
    const out = [];
    for (let n = h.nextElementSibling; n && !/^H[1-3]$/.test(n.tagName); n = n.nextElementSibling)
      out.push(...(n.matches("table") ? [n] : n.querySelectorAll("table")));
    return out;
  };
  const probe = {
    page: {w: document.documentElement.scrollWidth, h: document.documentElement.scrollHeight},
    verdicts: table(document.getElementById("verdict-table")),
    counterexamples: [...document.querySelectorAll("h3[id^=cex-]")].map((h) => ({
      id: h.id, title: h.innerText.trim(), box: box(h), tables: after(h).map(table)})),
    images: [...document.images].map((i) => ({alt: i.alt, src: i.src.slice(0, 40), complete: i.complete,
      natural: [i.naturalWidth, i.naturalHeight], box: box(i)})),
    figures: [...document.querySelectorAll("figure")].map((f) => ({box: box(f),
      caption: (f.querySelector("figcaption") || {}).innerText, img: !!f.querySelector("img")})),
    links: [...document.querySelectorAll("a[href]")].map((a) => ({href: a.getAttribute("href"),
      target: a.hash ? !!document.getElementById(decodeURIComponent(a.hash.slice(1))) : null})),
  };
  const pre = document.createElement("pre");
  pre.id = "verify-probe";
  pre.hidden = true;
  pre.textContent = JSON.stringify(probe);
  document.body.appendChild(pre);
});
</script>"""

CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--hide-scrollbars", "--force-device-scale-factor=1", "--virtual-time-budget=5000"]
WIDTH = 1280  # CSS pixels = screenshot pixels (device scale factor 1)


def _chrome(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile.mkdir()  # a fresh profile each time: nothing cached, nothing shared
    done = subprocess.run([browser, *CHROME_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, f"chromium exited {done.returncode}: {done.stderr[-2000:]}"
    return done


def _probe(browser: str, page: Path, tmp_path: Path) -> dict:
    """What Chromium laid out for ``page``, from a copy (in the same folder) with PROBE injected."""
    copy = page.with_name("probe-" + page.name)
    text = page.read_text()
    assert text.count("</body>") == 1
    copy.write_text(text.replace("</body>", PROBE + "</body>"))
    dom = _chrome(browser, tmp_path / "profile-dom", f"--window-size={WIDTH},900", "--dump-dom",
                  copy.as_uri()).stdout
    found = re.search(r'<pre id="verify-probe"[^>]*>(.*?)</pre>', dom, re.S)
    assert found, f"the probe did not run (scripts or the load event): {dom[-1000:]}"
    return json.loads(html.unescape(found.group(1)))


def _seen(b: dict) -> bool:
    return bool(b["shown"]) and b["w"] >= 1 and b["h"] >= 1


def test_html_renders_in_headless_chromium(browser: str | None, request: pytest.FixtureRequest,
                                           tmp_path: Path) -> None:
    """Look at the page as a person would: the layout Chromium computes (every table and picture
    has a size, every image decoded, every cell filled in, every link leads somewhere) and the
    screenshot of the whole page (the banner, the tables and the pictures are really painted)."""
    if browser is None:
        pytest.fail(f"CI=true: the HTML report must be rendered in CI, but {NO_BROWSER}", pytrace=False)
    run, rep = request.getfixturevalue("failing")  # only now: the gate run takes seconds
    page = rep / "report.html"
    probe = _probe(browser, page, tmp_path)
    named = [p for p in run.report["properties"] if p["family"] is None]
    falsified = [p for p in named if p["verdict"] == "falsified"]
    assert len(named) == 4 and len(falsified) == 2

    # the verdict table: its header, one visible row per named property, every cell filled in
    verdicts = probe["verdicts"]
    assert verdicts is not None, "no verdict table"
    assert _seen(verdicts["box"]) and verdicts["box"]["w"] >= 600, f"the verdict table is not shown: {verdicts['box']}"
    assert verdicts["head"][:4] == ["property", "model", "requires", "verdict"], verdicts["head"]
    assert len(verdicts["rows"]) == len(named), [r["cells"][0] for r in verdicts["rows"]]
    for row, p in zip(verdicts["rows"], named, strict=True):
        assert _seen(row["box"]) and row["box"]["h"] >= 15, row
        assert row["cells"][0].startswith(p["id"]) and row["cells"][3] == p["verdict"], row
        assert all(row["cells"]), f"an empty cell in the verdict table: {row}"

    # one counterexample section per falsified property: two tables (inputs, outputs), values filled in
    assert [c["id"] for c in probe["counterexamples"]] == [f"cex-p-{p['id']}" for p in falsified]
    for c, p in zip(probe["counterexamples"], falsified, strict=True):
        assert c["title"] == p["id"] and _seen(c["box"])
        assert [t["head"] for t in c["tables"]] == [["input", "value"], ["output", "value"]], c
        for t, values in zip(c["tables"], (p["counterexample"]["x"], p["counterexample"]["y"]), strict=True):
            assert _seen(t["box"]) and t["box"]["w"] >= 60 and len(t["rows"]) == len(values) > 0, t
            for i, (row, v) in enumerate(zip(t["rows"], values, strict=True)):
                assert _seen(row["box"]) and row["cells"][0].endswith(f"_{i}"), row
                assert row["cells"][1] and float(row["cells"][1]) == pytest.approx(v, rel=1e-6), row

    # the module pictures: one per named property, decoded (a broken image has naturalWidth 0), shown
    assert [f["caption"] for f in probe["figures"]] == [p["id"] for p in named]
    assert all(f["img"] and _seen(f["box"]) for f in probe["figures"]), probe["figures"]
    assert probe["images"], "no <img> on the page"
    for im in probe["images"]:
        assert im["complete"] and min(im["natural"]) > 0, f"broken image: {im}"
        assert _seen(im["box"]) and im["box"]["w"] >= 100 and im["box"]["h"] >= 50, f"image not visible: {im}"
    pictures = [im for im in probe["images"] if im["alt"].startswith("module graph of ")]
    assert len(pictures) == len(named)

    # links: in-page anchors exist; files (certificates) are there
    for link in probe["links"]:
        if link["href"].startswith("#"):
            assert link["target"], f"link to nothing: {link}"
        else:
            assert (rep / link["href"]).is_file(), f"link to a missing file: {link}"

    # the screenshot of the whole page (the report itself, without the probe)
    height = int(probe["page"]["h"])
    assert 900 <= height <= 8000 and probe["page"]["w"] <= WIDTH, probe["page"]
    shot = tmp_path / "shot.png"
    _chrome(browser, tmp_path / "profile-shot", f"--window-size={WIDTH},{height}", f"--screenshot={shot}",
            page.as_uri())
    assert shot.is_file()
    from PIL import Image  # Pillow comes with matplotlib

    with Image.open(shot) as png:
        img = np.asarray(png.convert("RGB")).astype(int)
    assert img.shape[:2] == (height, WIDTH)
    white = (img >= 250).all(axis=2)
    assert 0.02 < 1 - white.mean() < 0.9, "the screenshot is blank (or all ink)"

    def crop(b: dict) -> np.ndarray:
        return img[int(b["y"]) + 1:int(b["y"] + b["h"]) - 1, int(b["x"]) + 1:int(b["x"] + b["w"]) - 1]

    def near(part: np.ndarray, color: tuple[int, int, int]) -> np.ndarray:
        return np.abs(part - np.array(color)).max(axis=2) <= 6

    def rows_with(color: tuple[int, int, int], min_pixels: int, part: np.ndarray = img) -> np.ndarray:
        return np.nonzero(near(part, color).sum(axis=1) >= min_pixels)[0]

    def ink(part: np.ndarray) -> float:  # the share of dark pixels (text): about 0.02-0.09 in a filled cell
        return float((part.max(axis=2) < 120).mean()) if part.size else 0.0

    banner = rows_with((198, 40, 40), 800)  # the red FAIL banner across the page
    header = rows_with((29, 53, 87), 600)  # the verdict table's dark header row, 600+ px wide
    verified = rows_with((46, 125, 50), 20)  # green "verified" badges
    red = rows_with((198, 40, 40), 20)  # red "falsified" badges
    assert banner.size and header.size and verified.size, "the banner, the table header or the badges are not painted"
    assert banner.max() < header.min() < 500, "the verdict table header is near the top, below the banner"
    assert abs(header.min() - verdicts["box"]["y"]) <= 3, "the screenshot and the probe's layout agree"
    body = verified[verified > header.min()]
    assert body.size >= 3 * 5, "three verified badges (several pixel rows each) under the header"
    assert red[red > header.min()].size, "the falsified badges are visible"
    for row in verdicts["rows"]:
        assert ink(crop(row["boxes"][0])) > 0.008, f"no text painted in the verdict row {row['cells'][0]}"

    for c in probe["counterexamples"]:
        for t in c["tables"]:
            part = crop(t["box"])
            head = rows_with((29, 53, 87), int(0.8 * part.shape[1]), part)
            assert head.size >= 10, f"no dark header painted over the counterexample table of {c['title']}"
            for row in t["rows"]:
                assert ink(crop(row["boxes"][1])) > 0.03, f"{row['cells'][0]} of {c['title']}: no value painted"

    for im in pictures:
        part = crop(im["box"])
        colours = np.unique(part.reshape(-1, 3) // 16, axis=0)
        assert 1 - (part >= 250).all(axis=2).mean() > 0.05 and len(colours) >= 8, \
            f"the picture {im['alt']!r} is painted blank"
