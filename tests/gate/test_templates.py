"""Templated properties through verify gate (issue 19): a verified monotone property with its certificate, a
falsified one with its pair in the JSON, JUnit and HTML reports (the HTML looked at in headless Chromium)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.gate.conftest import by_id, gate, write_manifest
from tests.gate.test_reports import _probe, browser  # noqa: F401  (a fixture)
from tests.relational import nets
from verify.certcheck import check_certificate

MANIFEST = """timeout = 30
[models]
mono = "mono.onnx"
mlp = "mlp.onnx"

[[properties]]
name = "monotone-in-x0"
spec = "mono0.py"
models = ["mono"]

[[properties]]
name = "not-monotone-in-x1"
spec = "mono1.py"
models = ["mlp"]
require = "none"
"""


def _project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    nets.monotone_by_construction(root / "mono.onnx")
    nets.standard(root / "mlp.onnx", seed=2, sizes=(3, 8, 1))
    for name, feature in (("mono0.py", 0), ("mono1.py", 1)):
        (root / name).write_text("from verify.spec import box, monotone\n"
                                 f"PROPERTY = monotone(box([-1, -1, -1], [1, 1, 1]), feature={feature}, output=0)\n")
    write_manifest(root, MANIFEST)
    return root


def test_templates_in_a_gate_with_reports(tmp_path: Path, browser: str | None) -> None:  # noqa: F811
    root = _project(tmp_path)
    run = gate(root, report=tmp_path / "rep", junit=tmp_path / "junit.xml", cache=False)
    assert run.exit_code == 0, run.report["failures"]
    props = by_id(run)
    mono, other = props["monotone-in-x0@mono"], props["not-monotone-in-x1@mlp"]
    assert mono["verdict"] == "verified" and mono["details"]["template"]["template"] == "monotone"
    assert mono["certificate"]["kinds"] == ["jacobian"]
    cert = json.loads((tmp_path / "rep" / mono["certificate"]["file"]).read_text())
    assert check_certificate(root / "mono.onnx", root / "mono0.py", cert).valid
    assert other["verdict"] == "falsified" and other["status"] == "pass"
    pair = other["details"]["pair"]
    assert pair["x_prime"][1] > pair["x"][1] and pair["y_prime"][0] < pair["y"][0]
    data = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert data["properties"][1]["details"]["pair"] == pair
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    text = ET.tostring(suite, encoding="unicode")
    assert "counterexample pair (replayed on the original model(s)):" in text and "x' = [" in text
    page = tmp_path / "rep" / "report.html"
    assert "Counterexample pairs" in page.read_text()
    if browser is None:  # in CI without a browser: the page must be looked at (see test_reports)
        raise AssertionError("no Chromium in CI")
    seen = _probe(browser, page, tmp_path)
    found = [c for c in seen["counterexamples"] if "not-monotone-in-x1" in c["title"]]
    assert found and found[0]["tables"], seen["counterexamples"]
    rows = {r["cells"][0]: r["cells"][1] for r in found[0]["tables"][0]["rows"]}
    assert set(rows) == {"x", "x'", "y", "y'"} and all(rows.values())
    links = [link for link in seen["links"]
             if link["href"].startswith("#cex-") and "not-monotone-in-x1" in link["href"]]
    assert links and all(link["target"] for link in links)


INLINE = """timeout = 30
[models]
mono = "mono.onnx"
mlp = "mlp.onnx"

[[properties]]
name = "monotone-in-x0"
template = "monotone"
lower = [-1, -1, -1]
upper = [1, 1, 1]
feature = 0
models = ["mono"]

[[properties]]
name = "range"
template = "output_range"
center = [0.1, 0.2, 0.3]
eps = 0.01
output = 0
lower_bound = -100
upper_bound = 100
models = ["mlp"]

[[properties]]
name = "not-monotone-in-x1"
template = "monotone"
lower = [-1, -1, -1]
upper = [1, 1, 1]
feature = 1
models = ["mlp"]
require = "none"
"""


def test_template_tables_in_the_manifest(tmp_path: Path) -> None:
    root = _project(tmp_path)
    write_manifest(root, INLINE)
    run = gate(root, report=tmp_path / "rep", cache=False)
    assert run.exit_code == 0, run.report["failures"]
    props = by_id(run)
    assert props["monotone-in-x0@mono"]["verdict"] == "verified"
    assert props["range@mlp"]["verdict"] == "verified"
    assert props["range@mlp"]["details"]["template"]["template"] == "output_range"
    assert props["not-monotone-in-x1@mlp"]["verdict"] == "falsified"
    spec = Path(props["monotone-in-x0@mono"]["spec"])
    spec = spec if spec.is_absolute() else root / spec
    assert spec.suffix == ".py" and "monotone(box([-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]), feature=0)" in spec.read_text()
    cert = json.loads((tmp_path / "rep" / props["monotone-in-x0@mono"]["certificate"]["file"]).read_text())
    assert check_certificate(root / "mono.onnx", spec, cert).valid


def test_template_tables_are_validated(tmp_path: Path) -> None:
    from verify.errors import ManifestError
    from verify.gate.manifest import load_manifest

    root = _project(tmp_path)
    cases = [('template = "monotone"\nlower = [0, 0, 0]\nupper = [1, 1, 1]\nfeature = -1', "feature must be"),
             ('template = "monotone"\nfeature = 0', "needs a region"),
             ('template = "fair"\nlower = [0]\nupper = [1]\nL = 2', "not a parameter of template 'fair'"),
             ('template = "nonesuch"\nlower = [0]\nupper = [1]', "expected one of monotone"),
             ('template = "monotone"\nspec = "mono0.py"\nlower = [0]\nupper = [1]', "either 'spec' or 'template'"),
             ('spec = "mono0.py"\nfeature = 0', "belongs to a template"),
             ('template = "equivalent"\nlower = [0]\nupper = [1]\nother = "missing.onnx"\ndelta = 1', "missing.onnx")]
    for body, message in cases:
        write_manifest(root, f'[models]\nm = "mono.onnx"\n[[properties]]\nname = "p"\n{body}\n')
        try:
            load_manifest(root / "verify.toml")
        except ManifestError as exc:
            assert message in str(exc) and "\n" not in str(exc), (body, str(exc))
        else:
            raise AssertionError(f"accepted: {body}")
