"""The chain form of a graph: ``z_k = W_k a_{k-1} + b_k``, ``a_k = relu(z_k)``, ``y = z_K``.

Most verification benchmarks (ACAS Xu, MNIST-FC, OVAL21 after Conv -> dense) are such
chains once identities are dropped and consecutive affine nodes folded.  The chain is
what the batched bound engine and branch-and-bound work on.  ``neuron_ids[k]`` keeps,
for each hidden neuron of ReLU layer ``k``, its index in the original ReLU node, so
compression (which deletes neurons) stays traceable.

:func:`chain_from_ir` reads the chain straight off the IR (no networkx: it is on the path
of every ``verify check`` of a dense chain, and importing networkx took 0.15-0.22 s of
start-up here); :mod:`verify.graph.chain_graph` converts between chains and the flat
networkx form that compression rewrites.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from verify.ir.evaluate import dense_matrix
from verify.ir.graph import Graph


@dataclass
class LinearChain:
    """Affine layers with ReLUs between them (float64)."""

    weights: list[np.ndarray]  # W_k: [n_k, n_{k-1}]
    biases: list[np.ndarray]  # b_k: [n_k]
    relu_names: list[str] = field(default_factory=list)  # graph name of ReLU layer k (len K-1)
    neuron_ids: list[np.ndarray] = field(default_factory=list)  # original index of each hidden neuron
    sources: list[str] = field(default_factory=list)  # original ReLU node of each hidden layer

    def __post_init__(self) -> None:
        if not self.relu_names:
            self.relu_names = [f"relu{k}" for k in range(len(self.weights) - 1)]
        if not self.neuron_ids:
            self.neuron_ids = [np.arange(w.shape[0]) for w in self.weights[:-1]]
        if not self.sources:
            self.sources = list(self.relu_names)
        for k in range(1, len(self.weights)):
            assert self.weights[k].shape[1] == self.weights[k - 1].shape[0], "chain layer sizes do not match"

    @property
    def n_inputs(self) -> int:
        return int(self.weights[0].shape[1])

    @property
    def n_outputs(self) -> int:
        return int(self.weights[-1].shape[0])

    @property
    def hidden_sizes(self) -> list[int]:
        return [int(w.shape[0]) for w in self.weights[:-1]]

    def forward(self, x: np.ndarray) -> np.ndarray:
        a = np.asarray(x, dtype=np.float64)
        for k, (W, b) in enumerate(zip(self.weights, self.biases)):
            a = a @ W.T + b
            if k < len(self.weights) - 1:
                a = np.maximum(a, 0.0)
        return a

    def with_spec(self, C: np.ndarray, d: np.ndarray) -> LinearChain:
        """The chain whose outputs are ``C y - d`` (the property rows folded into the last layer)."""
        W = np.asarray(C, dtype=np.float64) @ self.weights[-1]
        b = np.asarray(C, dtype=np.float64) @ self.biases[-1] - np.asarray(d, dtype=np.float64)
        return LinearChain(self.weights[:-1] + [W], self.biases[:-1] + [b], list(self.relu_names),
                           list(self.neuron_ids), list(self.sources))

    def torch(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        return ([torch.as_tensor(w, dtype=torch.float64) for w in self.weights],
                [torch.as_tensor(b, dtype=torch.float64) for b in self.biases])


def chain_eval(Ws: list[torch.Tensor], bs: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The outputs at the points ``x`` (float64) of the chain with these weights and biases
    (:meth:`LinearChain.torch`, possibly with the property rows folded into the last layer)."""
    a = x
    for k, (W, b) in enumerate(zip(Ws, bs)):
        a = a @ W.T + b
        if k < len(Ws) - 1:
            a = a.clamp(min=0)
    return a


def compose_affine(W2: np.ndarray, b2: np.ndarray, W1: np.ndarray, b1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The affine map ``x -> W2 (W1 x + b1) + b2`` (either W may be a diagonal vector)."""
    if W2.ndim == 1 and W1.ndim == 1:
        W = W2 * W1
    elif W2.ndim == 1:
        W = W2[:, None] * W1
    elif W1.ndim == 1:
        W = W2 * W1[None, :]
    else:
        W = W2 @ W1
    b = (W2 * b1 if W2.ndim == 1 else W2 @ b1) + b2
    return W, b


#: IR ops a dense chain is made of (reshapes are identities on flat vectors).
CHAIN_OPS = frozenset({"linear", "affine", "reshape", "relu"})


def chain_from_ir(ir: Graph) -> LinearChain | None:
    """The chain form of an IR graph (consecutive affine ops folded, as
    :func:`verify.compress.fold.fold_affine` folds them), or None when the graph is not a
    chain of :data:`CHAIN_OPS` with an affine op before each ReLU."""
    if not set(ir.op_counts()) <= CHAIN_OPS or not ir.is_chain():
        return None
    weights: list[np.ndarray] = []
    biases: list[np.ndarray] = []
    relu_names: list[str] = []
    pending: tuple[np.ndarray, np.ndarray] | None = None
    used = {"input"}
    for node in ir.nodes:
        if node.op == "reshape":
            continue
        if node.op == "relu":
            if pending is None:
                return None
            W, b = pending
            weights.append(np.diag(W) if W.ndim == 1 else W)
            biases.append(b)
            name, k = node.name, 1
            while name in used:  # as the flat graph names its nodes
                name, k = f"{node.name}_{k}", k + 1
            used.add(name)
            relu_names.append(name)
            pending = None
            continue
        used.add(node.name)
        if node.op == "affine":
            shape = ir.values[node.inputs[0]].shape
            scale, shift = node.attrs.get("scale"), node.attrs.get("shift")
            W = np.broadcast_to(np.asarray(1.0 if scale is None else scale, dtype=np.float64), shape).reshape(-1)
            b = np.broadcast_to(np.asarray(0.0 if shift is None else shift, dtype=np.float64), shape).reshape(-1)
            W, b = W.copy(), b.copy()
        else:
            W, b = dense_matrix(ir, node)
        pending = (W, b) if pending is None else compose_affine(W, b, *pending)
    if pending is not None:
        W, b = pending
        weights.append(np.diag(W) if W.ndim == 1 else W)
        biases.append(b)
    if not weights:
        return None
    if pending is None:  # the output is a ReLU: an identity layer follows
        n = weights[-1].shape[0]
        weights.append(np.eye(n))
        biases.append(np.zeros(n))
    return LinearChain([np.asarray(w, dtype=np.float64) for w in weights],
                       [np.asarray(b, dtype=np.float64) for b in biases], relu_names)
