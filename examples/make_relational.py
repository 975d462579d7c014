"""Train the bundled examples of templated properties (docs/relational.md) and write them as ONNX.

Synthetic tabular data: an approval score from four features in [0, 1] (income, savings,
debt, and a protected attribute), deterministic (fixed seeds), a few seconds on a CPU.
Writes into ``examples/relational/``:

* ``monotone.onnx``: an MLP monotone by construction in income (feature 0): the first
  layer's weights on income and every later layer's weights are kept non-negative
  (trained through ``abs``), and ReLU is monotone;
* ``standard.onnx``: a plain MLP trained on the same data (no constraint);
* ``blind.onnx``: trained with the protected attribute's first-layer weights held at 0,
  so it ignores the attribute; ``biased.onnx``: trained on labels that depend on it;
* ``pruned.onnx``: ``standard.onnx`` with every weight of magnitude below 0.05 set to 0;

and the specs next to them (``*.py``, each defining ``PROPERTY`` with a template).
``verify check`` answers (tests/test_relational_examples.py checks each):

==================================  ======================  ==========
spec                                model                   answer
==================================  ======================  ==========
monotone_income.py                  monotone.onnx           verified
monotone_income.py                  standard.onnx           falsified
fair_protected.py                   blind.onnx              verified
fair_protected.py                   biased.onnx             falsified
lipschitz_point.py                  standard.onnx           verified
lipschitz_point_half.py             standard.onnx           falsified
equivalent_pruned.py                standard.onnx           verified
equivalent_pruned_tight.py          standard.onnx           falsified
==================================  ======================  ==========
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

HERE = Path(__file__).resolve().parent
SIZES = [4, 16, 16, 1]

SPECS = {
    "monotone_income.py": "from verify.spec import box, monotone\n\n"
                          "# approval never decreases when only the income increases\n"
                          "PROPERTY = monotone(box([0, 0, 0, 0], [1, 1, 1, 1]), feature=0, output=0)\n",
    "fair_protected.py": "from verify.spec import box, fair\n\n"
                         "# changing only the protected attribute (feature 3) never changes the score\n"
                         "PROPERTY = fair(box([0, 0, 0, 0], [1, 1, 1, 1]), sensitive=[3], output=0, tolerance=0.0)\n",
    "lipschitz_point.py": "from verify.spec import linf_ball, lipschitz\n\n"
                          "# near this applicant the score moves by at most 10 times the largest feature change\n"
                          "PROPERTY = lipschitz(linf_ball([0.6, 0.4, 0.3, 0.5], eps=0.02), L=10.0)\n",
    "lipschitz_point_half.py": "from verify.spec import linf_ball, lipschitz\n\n"
                               "# half the constant verify certifies there (about 3.35): a pair breaks it\n"
                               "PROPERTY = lipschitz(linf_ball([0.6, 0.4, 0.3, 0.5], eps=0.02), L=1.6)\n",
    "equivalent_pruned.py": "from verify.spec import box, equivalent\n\n"
                            "# the pruned model's score stays within 0.5 of the full model's everywhere\n"
                            "PROPERTY = equivalent(box([0, 0, 0, 0], [1, 1, 1, 1]), 'pruned.onnx', delta=0.5)\n",
    "equivalent_pruned_tight.py": "from verify.spec import box, equivalent\n\n"
                                  "# within 0.002: less than the largest difference, so a counterexample exists\n"
                                  "PROPERTY = equivalent(box([0, 0, 0, 0], [1, 1, 1, 1]), 'pruned.onnx', "
                                  "delta=0.002)\n",
}


def make_data(n: int, rng: np.random.Generator, biased: bool = False) -> tuple[np.ndarray, np.ndarray]:
    x = rng.uniform(0, 1, (n, 4)).astype(np.float32)
    # mostly increasing in income, with a dip a flexible model learns (and a monotone one cannot)
    score = 1.0 * x[:, 0] + 0.4 * np.sin(8 * x[:, 0]) + 1.0 * x[:, 1] - 1.5 * x[:, 2]
    if biased:
        score = score + 0.8 * x[:, 3]
    return x, score.astype(np.float32)[:, None]


class Net(nn.Module):
    """An MLP whose first-layer weights on ``positive`` features and whose later weights can be made
    non-negative (``abs``), and whose first-layer weights on ``zeroed`` features are held at 0."""

    def __init__(self, monotone_in: list[int] | None = None, zeroed: list[int] | None = None) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(SIZES[:-1], SIZES[1:]))
        self.monotone_in, self.zeroed = monotone_in or [], zeroed or []

    def weights(self) -> list[torch.Tensor]:
        out = []
        for k, layer in enumerate(self.layers):
            W = layer.weight
            if self.monotone_in:
                if k == 0:
                    mask = torch.zeros_like(W, dtype=torch.bool)
                    mask[:, self.monotone_in] = True
                    W = torch.where(mask, W.abs(), W)
                else:
                    W = W.abs()
            if k == 0 and self.zeroed:
                keep = torch.ones_like(W)
                keep[:, self.zeroed] = 0.0
                W = W * keep
            out.append(W)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for k, (layer, W) in enumerate(zip(self.layers, self.weights())):
            x = x @ W.T + layer.bias
            if k < len(self.layers) - 1:
                x = torch.relu(x)
        return x


def train(net: Net, biased: bool = False, seed: int = 0) -> Net:
    torch.manual_seed(seed)
    x, y = make_data(2000, np.random.default_rng(seed), biased)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(1500):
        opt.zero_grad()
        loss = nn.functional.mse_loss(net(xt), yt)
        loss.backward()
        opt.step()
    print(f"trained {'biased ' if biased else ''}{type(net).__name__}: mse {loss.item():.4f}")
    return net


def to_onnx(Ws: list[np.ndarray], bs: list[np.ndarray], path: Path, name: str) -> None:
    nodes, inits, current = [], [], "input"
    for k, (W, b) in enumerate(zip(Ws, bs)):
        inits += [numpy_helper.from_array(W.astype(np.float32), f"fc{k}.weight"),
                  numpy_helper.from_array(b.astype(np.float32), f"fc{k}.bias")]
        out = f"fc{k}" if k < len(Ws) - 1 else "output"
        nodes.append(helper.make_node("Gemm", [current, f"fc{k}.weight", f"fc{k}.bias"], [out], name=f"fc{k}",
                                      transB=1))
        current = out
        if k < len(Ws) - 1:
            current = f"relu{k}"
            nodes.append(helper.make_node("Relu", [out], [current], name=current))
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, SIZES[0]])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, SIZES[-1]])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="verify-example")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _arrays(net: Net) -> tuple[list[np.ndarray], list[np.ndarray]]:
    with torch.no_grad():
        return [W.numpy().copy() for W in net.weights()], [layer.bias.numpy().copy() for layer in net.layers]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE / "relational"), help="output folder")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    to_onnx(*_arrays(train(Net(monotone_in=[0]))), out / "monotone.onnx", "monotone")
    standard = _arrays(train(Net(), seed=1))
    to_onnx(*standard, out / "standard.onnx", "standard")
    to_onnx(*_arrays(train(Net(zeroed=[3]), biased=True, seed=2)), out / "blind.onnx", "blind")
    to_onnx(*_arrays(train(Net(), biased=True, seed=3)), out / "biased.onnx", "biased")
    Ws, bs = standard
    to_onnx([np.where(np.abs(W) < 0.05, 0.0, W) for W in Ws], bs, out / "pruned.onnx", "pruned")
    for name, text in SPECS.items():
        (out / name).write_text(text)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
