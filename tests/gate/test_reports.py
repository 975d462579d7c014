"""verify.gate.reports: JSON (the documented schema), JUnit (parsed with xml.etree), Markdown
and the self-contained HTML page, which a headless Chromium renders with the verdict table
visible (skipped when no Chromium is installed)."""

from __future__ import annotations

import json
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


@pytest.fixture
def browser() -> str:
    """A headless-capable Chromium, or skip (before the gate fixture runs)."""
    path = _chromium()
    if path is None:
        pytest.skip("no Chromium binary (chromium, chromium-browser, google-chrome) on PATH")
    return path


def test_html_renders_in_headless_chromium(browser: str, failing: tuple[GateRun, Path], tmp_path: Path) -> None:
    _, rep = failing
    shot = tmp_path / "shot.png"
    done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--window-size=1200,900", f"--screenshot={shot}", (rep / "report.html").as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    import matplotlib.image

    img = (matplotlib.image.imread(shot)[..., :3] * 255).round().astype(int)
    assert img.shape[:2] == (900, 1200)

    def rows_with(color: tuple[int, int, int], min_pixels: int) -> np.ndarray:
        match = (np.abs(img - np.array(color)).max(axis=2) <= 6).sum(axis=1)
        return np.nonzero(match >= min_pixels)[0]

    banner = rows_with((198, 40, 40), 800)  # the red FAIL banner across the page
    header = rows_with((29, 53, 87), 600)  # the verdict table's dark header row, 600+ px wide
    verified = rows_with((46, 125, 50), 20)  # green "verified" badges
    falsified = rows_with((198, 40, 40), 20)  # the red "falsified" badge
    assert banner.size and header.size and verified.size
    assert banner.max() < header.min() < 500, "the verdict table header is near the top, below the banner"
    body = verified[verified > header.min()]
    assert body.size >= 3 * 5, "three verified badges (several pixel rows each) under the header"
    assert falsified[falsified > header.min()].size, "the falsified badge of class0-robust is visible"
