"""Draw the module pictures shown in docs/graph.md (and the README).

    .venv/bin/python examples/graph_pictures.py

Writes ``docs/images/tiny_modules.png`` (the bundled example on ``specs/tiny_robust_class0.vnnlib``)
and, when ``../shared/benchmarks/acasxu`` is there, ``docs/images/acasxu_modules.png`` (network
2_1 on property 3).  Same as ``verify graph MODEL --spec SPEC --out DIR``, with fixed file names.
"""

from __future__ import annotations

from pathlib import Path

import torch

from verify.compress import compress_model
from verify.model.network import load_model
from verify.modules.draw import draw_modules
from verify.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
ACASXU = ROOT.parent / "shared" / "benchmarks" / "acasxu"


def picture(model_path: Path, spec_path: Path, out: Path, title: str) -> None:
    model = load_model(model_path)
    result = compress_model(model, load_spec(spec_path))
    draw_modules(result.modules, model.n_inputs, out, title)
    print(f"{out.relative_to(ROOT)}: ReLUs {result.relus_before} -> {result.relus_after}, "
          f"unstable {result.unstable_after}, {result.n_modules} modules")


def main() -> None:
    torch.set_num_threads(1)
    IMAGES.mkdir(parents=True, exist_ok=True)
    picture(ROOT / "examples" / "tiny" / "classifier.onnx", ROOT / "specs" / "tiny_robust_class0.vnnlib",
            IMAGES / "tiny_modules.png", "examples/tiny/classifier.onnx on tiny_robust_class0.vnnlib")
    if (ACASXU / "instances.csv").exists():
        picture(ACASXU / "onnx" / "ACASXU_run2a_2_1_batch_2000.onnx", ACASXU / "vnnlib" / "prop_3.vnnlib",
                IMAGES / "acasxu_modules.png", "ACAS Xu 2_1 on property 3")


if __name__ == "__main__":
    main()
