"""Build certificate files (the producer side; the checker lives in :mod:`verify.certcheck`).

Schema (version 1, JSON; arrays are encoded as in :mod:`verify.certcheck.encoding`)::

    {
      "format": "verify-certificate", "version": 1, "producer": "verify X.Y.Z",
      "semantics": "...",                      # what "verified" means (README)
      "model": {"file": "...", "sha256": "..."},
      "spec":  {"file": "...", "sha256": "..."},
      "verdict": "verified",
      "network": {"relu_layers": [sizes], "relu_names": [names]},
      "cases": [                               # one per input box of the property, in order
        {"case": 0, "kind": "input-split",
         "input-split": {
            "tree": {"parent": i4[n], "dim": i2[n], "value": f8[n], "side": i1[n]},
            "closures": {"node": i4[c], "polytope": i2[c], "margin": f8[c]},
            "alphas": [{"node": i, "polytope": p, "layers": [f8[m_p, n_k] per ReLU layer]}]  # optional
         }},
        ...
      ],
    }

A tree node ``i > 0`` is the ``side`` half (0 lower, 1 upper) of node ``parent[i]`` cut at
``value[i]`` along input ``dim[i]``; node 0 is the case's box.  A closure ``(node, p,
margin)`` claims that on that node's box some row ``C_r y <= d_r`` of unsafe polytope ``p``
has ``C_r y - d_r >= margin > 0``, by CROWN (interval and symbolic bounds,
back-substitution for unstable neurons, adaptive lower slopes unless ``alphas`` are
given).  Relu-split proofs (kind ``relu-split``) record a tree of neuron phases instead,
with the alphas and betas of each closure, and ``children_bounds``: ``"parent"`` when a
node's hidden-layer bounds are its parent's clamped by its split, ``"recomputed"`` (the
default) when they are recomputed from the split layer on; see :mod:`verify.refine.relu_split`.

Module proofs (kind ``modules``, built by :mod:`verify.certificate.modules`, checked by
:mod:`verify.certcheck.modules`) cut the network at ReLU layers into modules of
consecutive blocks (block ``k``: the linear operations from ReLU layer ``k-1``'s output, or
the input, to ReLU layer ``k``'s pre-activation; the last block ends at the output)::

        {"case": 0, "kind": "modules",
         "modules": {
            "claims": [                        # in block order, covering every block once
              {"name": "M1", "blocks": [s, e], "backend": "z3" | "crown" | "alpha-crown" | ...,
               "input": {"lower": f8[n], "upper": f8[n]},          # A: box on block s's input
               "output": {"lower": f8[n_e], "upper": f8[n_e]},     # B: box on layer e's pre-activation
               # the last module has instead, per unsafe polytope p (> 0):
               # "polytopes": {"margin": f8[P]}                      max_r (C_r y - d_r) >= margin_p
               "evidence": {"method": "CROWN" | "alpha-CROWN" | "interval" | "auto_LiRPA ..." | "z3",
                            # bound propagation:
                            "intermediate": [{"lower": f8[n_j], "upper": f8[n_j]} per ReLU layer inside],
                            "alphas": [f8[m, n_j] per ReLU layer inside] | "slopes": "adaptive",
                            # rows m: [z; -z] of the output (2 n_e), or the case's stacked property rows
                            # z3: "smtlib": "...",   the claim's negation as SMT-LIB2 (unsat), "open_relus": k
                            ...}},
              ...],
            "composition": [{"from": "M1", "to": "M2", "layer": e, "rule": "relu-box"}, ...],
            "linear": [k, ...]                 # informational: ReLU layers crossed by linear relaxations
         }}

A claim reads: every input in ``A`` gives outputs in ``B`` (or the margins).  Composition:
``A`` of the first module contains the case's box, and ``relu(B_i)`` lies inside
``A_{i+1}`` (assume-guarantee).  The checker confirms each recorded intermediate bound by
back-substitution from ``A`` and the layers before, re-derives the claim with the recorded
slopes, and re-solves z3 claims with its own exact encoding of the model file.

Recorded margins are the producer's float64 values less a slack of ``max(1e-9 (1 + |m|), 1e-6 |m|)``, so
that the checker's rigorous recomputation reproduces them (module claims likewise: every
claimed or recorded bound is pushed outward by ``1e-9 (1 + |v|)``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from verify import __version__
from verify.certcheck.checker import FORMAT, VERSION
from verify.certcheck.encoding import encode_array, encode_sparse
from verify.runtime import write_json

SEMANTICS = ("The property holds for the real-valued network defined by the model file's weights "
             "(exact arithmetic) on every input of the spec's boxes; float32 execution may differ "
             "by rounding (see README, 'What a verdict means').")


def claimed(margin: float) -> float:
    """The margin a certificate claims for a computed one: a little less, so that the
    checker's rigorous recomputation (which differs by rounding) can confirm it: by
    ``1e-9 (1 + |m|)``, and at least a millionth of ``m`` (on cifar10_resnet's resnet_4b a
    branch-and-bound closure of margin 0.0346 recomputed a few 1e-9 lower: the error bounds
    of a large network)."""
    return float(margin - max(1e-9 * (1.0 + abs(margin)), 1e-6 * abs(margin)))


def input_split_slopes(tree: Any, groups: list[np.ndarray], chain_sizes: list[int],
                       expand: Any) -> list[dict[str, Any]]:
    """The ``alphas`` entries of an input-split proof: each alpha closure's slopes (stored
    per chain layer as positions and values) laid out on the original network's neurons by
    ``expand`` (:meth:`verify.refine.relu_split.NeuronMap.expand`), sparse."""
    out = []
    for node, p, slopes in tree.alpha_closures:
        rows = len(groups[p])
        dense = []
        for (pos, vals), n_k in zip(slopes, chain_sizes):
            a = np.zeros(rows * n_k)
            a[pos] = vals
            dense.append(a.reshape(rows, n_k))
        out.append({"node": int(node), "polytope": int(p), "layers": [encode_sparse(a) for a in expand(dense, rows)]})
    return out


def input_split_proof(case_index: int, tree: Any, alphas: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A case proof from a split tree (:class:`verify.refine.input_split.SplitTree`)."""
    nodes = [n for n, _, _ in tree.closures]
    polys = [p for _, p, _ in tree.closures]
    margins = [claimed(m) for _, _, m in tree.closures]
    body: dict[str, Any] = {
        "tree": {"parent": encode_array(np.asarray(tree.parent), "<i4"),
                 "dim": encode_array(np.asarray(tree.dim), "<i2"),
                 "value": encode_array(np.asarray(tree.value, dtype=np.float64)),
                 "side": encode_array(np.asarray(tree.side), "|i1")},
        "closures": {"node": encode_array(np.asarray(nodes, dtype=np.int64), "<i4"),
                     "polytope": encode_array(np.asarray(polys, dtype=np.int64), "<i2"),
                     "margin": encode_array(np.asarray(margins, dtype=np.float64))},
    }
    if alphas:
        body["alphas"] = alphas
    return {"case": case_index, "kind": "input-split", "input-split": body}


def dag_proof(case_index: int, tree: Any) -> dict[str, Any]:
    """A case proof on an IR network from its split tree (:class:`verify.refine.dag_split.DagTree`);
    the layout is ``docs/relaxations.md``'s ``dag`` kind."""
    nodes = [n for n, _, _ in tree.closures]
    polys = [p for _, p, _ in tree.closures]
    margins = [claimed(m) for _, _, m in tree.closures]
    body: dict[str, Any] = {
        "neurons": list(tree.neurons),
        "tree": {"parent": encode_array(np.asarray(tree.parent, dtype=np.int64), "<i4"),
                 "what": encode_array(np.asarray(tree.what, dtype=np.int64), "<i4"),
                 "index": encode_array(np.asarray(tree.index, dtype=np.int64), "<i4"),
                 "value": encode_array(np.asarray(tree.value, dtype=np.float64)),
                 "side": encode_array(np.asarray(tree.side, dtype=np.int64), "|i1")},
        "closures": {"node": encode_array(np.asarray(nodes, dtype=np.int64), "<i4"),
                     "polytope": encode_array(np.asarray(polys, dtype=np.int64), "<i2"),
                     "margin": encode_array(np.asarray(margins, dtype=np.float64))},
    }
    # closure index -> [rows of its polytope, neuron splits on its path] multipliers (a dict, or a
    # list aligned with the closures with None where a closure has none)
    betas = getattr(tree, "betas", None) or {}
    items = sorted(betas.items()) if isinstance(betas, dict) else list(enumerate(betas))
    items = [(j, b) for j, b in items if b is not None and np.asarray(b).size and np.any(np.asarray(b) != 0)]
    if items:
        body["betas"] = [{"closure": int(j), "values": encode_array(np.asarray(b, dtype=np.float64))}
                         for j, b in items]
    return {"case": case_index, "kind": "dag", "dag": body}


def jacobian_certificate(model: Any, spec_file: str, spec_sha256: str, template: Any, tree: Any,
                         other: Any = None) -> dict[str, Any]:
    """The certificate of a ``monotone``, ``fair`` or ``lipschitz`` template proved on the leaves of
    ``tree`` (:class:`verify.relational.boxes.BoxTree`), or with ``other`` (the second model) of an
    ``equivalent`` template (proof kind ``difference``); checked by :mod:`verify.certcheck.relational`."""
    nodes = [n for n, _ in tree.closed]
    body = {"tree": {"parent": encode_array(np.asarray(tree.parent, dtype=np.int64), "<i4"),
                     "dim": encode_array(np.asarray(tree.dim, dtype=np.int64), "<i2"),
                     "value": encode_array(np.asarray(tree.value, dtype=np.float64)),
                     "side": encode_array(np.asarray(tree.side, dtype=np.int64), "|i1")},
            "closures": {"node": encode_array(np.asarray(nodes, dtype=np.int64), "<i4"),
                         "value": encode_array(np.asarray([v for _, v in tree.closed], dtype=np.float64))}}
    kind = "jacobian" if other is None else "difference"
    cert = {"format": FORMAT, "version": VERSION, "producer": f"verify {__version__}", "semantics": SEMANTICS,
            "model": {"file": str(model.path.name if model.path else model.name), "sha256": model.sha256},
            "spec": {"file": spec_file, "sha256": spec_sha256}, "verdict": "verified",
            "template": template.to_json(), "cases": [{"case": 0, "kind": kind, kind: body}]}
    if other is not None:
        cert["other_model"] = {"file": str(other.path.name if other.path else other.name), "sha256": other.sha256}
    return cert


def build_certificate(model: Any, prop: Any, proofs: list[dict[str, Any]], relu_sizes: list[int],
                      relu_names: list[str]) -> dict[str, Any]:
    cert: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "producer": f"verify {__version__}",
        "semantics": SEMANTICS,
        "model": {"file": str(model.path.name if model.path else model.name), "sha256": model.sha256},
        "spec": {"file": str(Path(prop.source).name if prop.source else prop.name), "sha256": prop.sha256},
        "verdict": "verified",
        "network": {"relu_layers": list(map(int, relu_sizes)), "relu_names": list(relu_names)},
        "cases": proofs,
    }
    return cert


def write_certificate(path: str | Path, cert: dict[str, Any]) -> None:
    write_json(str(path), cert)
