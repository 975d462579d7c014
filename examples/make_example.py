"""Train the bundled example network and write it as ONNX, with its property specs.

A tiny classifier (4 inputs -> 16 -> 16 -> 3, ReLU) trained on synthetic data: three
Gaussian blobs in [0, 1]^4.  Deterministic (fixed seed), a few seconds on a CPU.
Writes ``examples/tiny/classifier.onnx`` and ``examples/tiny/points.npy`` (one blob centre
per class, with its label); the specs in ``specs/`` refer to these points.

The ONNX file is built directly with ``onnx.helper`` from the trained weights (Gemm and
Relu nodes), so no exporter version matters.
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
CENTRES = np.array([[0.2, 0.2, 0.3, 0.7], [0.8, 0.3, 0.6, 0.2], [0.5, 0.8, 0.2, 0.4]], dtype=np.float32)


def make_data(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, 3, n)
    x = CENTRES[labels] + rng.normal(0, 0.12, (n, 4)).astype(np.float32)
    return np.clip(x, 0, 1).astype(np.float32), labels


def train(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x, y = make_data(3000, rng)
    net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(300):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(xt), yt)
        loss.backward()
        opt.step()
    with torch.no_grad():
        acc = (net(xt).argmax(1) == yt).float().mean().item()
    print(f"trained: loss {loss.item():.4f}, training accuracy {acc:.3f}")
    return net


def to_onnx(net: nn.Sequential, path: Path) -> None:
    nodes, inits = [], []
    current = "input"
    linear_index = 0
    for i, layer in enumerate(net):
        if isinstance(layer, nn.Linear):
            w, b = f"fc{linear_index}.weight", f"fc{linear_index}.bias"
            inits.append(numpy_helper.from_array(layer.weight.detach().numpy().astype(np.float32), w))
            inits.append(numpy_helper.from_array(layer.bias.detach().numpy().astype(np.float32), b))
            out = f"fc{linear_index}" if i < len(net) - 1 else "output"
            nodes.append(helper.make_node("Gemm", [current, w, b], [out], name=f"fc{linear_index}", transB=1))
            linear_index += 1
        else:
            out = f"relu{linear_index}"
            nodes.append(helper.make_node("Relu", [current], [out], name=out))
        current = out
    graph = helper.make_graph(nodes, "tiny_classifier",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="verify-example")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE / "tiny"), help="output folder")
    args = parser.parse_args()
    out = Path(args.out)
    net = train()
    to_onnx(net, out / "classifier.onnx")
    np.save(out / "points.npy", np.concatenate([CENTRES, np.arange(3, dtype=np.float32)[:, None]], axis=1))
    print(f"wrote {out / 'classifier.onnx'}")


if __name__ == "__main__":
    main()
