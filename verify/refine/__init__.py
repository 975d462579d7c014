"""Refinement: prove one case of a property on a chain network by branch and bound.

:func:`prove_case` picks the strategy: input splitting for low-dimensional inputs
(:mod:`verify.refine.input_split`), otherwise a single CROWN bound of the whole box
(ReLU splitting for high-dimensional inputs lives in :mod:`verify.refine.relu_split`).
It returns the outcome with the proof a certificate needs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from verify.certificate.build import input_split_proof, input_split_slopes
from verify.graph.chain import LinearChain
from verify.refine.input_split import InputSplitOptions, InputSplitResult, input_split_bab
from verify.refine.outcome import CaseOutcome
from verify.refine.relu_split import NeuronMap, relu_split_bab
from verify.spec.property import Case

#: Inputs up to this many dimensions are split as boxes; beyond, ReLUs are split.
INPUT_SPLIT_MAX_DIMS = 16


def case_rows(case: Case) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """The case's polytope rows stacked (``C``, outer ``d``) and the row indices of each polytope."""
    C = np.concatenate([p.C for p in case.unsafe])
    d = np.concatenate([p.d for p in case.unsafe])
    groups, k = [], 0
    for p in case.unsafe:
        groups.append(np.arange(k, k + p.n_rows))
        k += p.n_rows
    return C, d, groups


def prove_case(chain: LinearChain, case: Case, case_index: int, deadline: float, threshold: float,
               progress: Callable[[str], None] | None = None,
               is_unsafe: Callable[[np.ndarray], bool] | None = None, folded: bool = False,
               original: LinearChain | None = None,
               search: Callable[[float], np.ndarray | None] | None = None,
               distribute: Callable[..., InputSplitResult] | None = None) -> CaseOutcome:
    """Verify one case (every unsafe polytope unreachable from its box) or find a candidate.

    ``chain`` is the network (``folded``: its outputs are already the case's rows ``C y - d``,
    as after compression with the property); ``original`` is the uncompressed chain, to
    express ReLU-split proofs in terms of the model's own neurons; ``search(limit)`` is a
    counterexample search on the original model that the refinement runs once when it
    has not finished after a tenth of its time.  ``distribute(Ws, bs, groups, lo, hi, deadline,
    options, is_unsafe, progress)``, when given, replaces input splitting in this process
    (:func:`verify.refine.distributed.distributed_input_split` on a cluster).
    """
    C, d, groups = case_rows(case)
    if any(p.n_rows == 0 for p in case.unsafe):
        centre = case.box.center
        return CaseOutcome("candidate", "trivial", -np.inf, candidate=centre)
    Ws, bs = chain.torch() if folded else chain.with_spec(C, d).torch()
    neuron_map = NeuronMap.between(chain, original or chain)
    if chain.n_inputs <= INPUT_SPLIT_MAX_DIMS:
        if distribute is not None:
            res = distribute(Ws, bs, groups, case.box.lower, case.box.upper, deadline,
                             InputSplitOptions(threshold=threshold), is_unsafe, progress)
        else:
            res = input_split_bab(Ws, bs, groups, case.box.lower, case.box.upper, deadline,
                                  InputSplitOptions(threshold=threshold), progress=progress, is_unsafe=is_unsafe,
                                  search=search)
        stats = {"domains_bounded": res.domains_bounded, "rounds": res.rounds, "tree_nodes": res.tree.size,
                 "closures": len(res.tree.closures), "alpha_tried": res.alpha_tried,
                 **({"cluster_batches": res.batches} if res.batches else {})}
        method = "crown" if res.tree.size == 1 else "distributed-input-split" if res.batches else "input-split"
        if res.status == "verified":
            slopes = input_split_slopes(res.tree, groups, [W.shape[0] for W in Ws[:-1]], neuron_map.expand)
            return CaseOutcome("verified", method, res.min_lb, input_split_proof(case_index, res.tree, slopes),
                               stats=stats)
        if res.status == "candidate":
            return CaseOutcome("candidate", "search" if res.by_search else method, -np.inf, candidate=res.candidate,
                               stats=stats)
        return CaseOutcome("open", method, res.min_lb, stats=stats)
    return relu_split_bab(Ws, bs, groups, case, case_index, deadline, threshold, progress, is_unsafe,
                          neuron_map=neuron_map, search=search)


def set_threads(n: int = 1) -> int:
    """Use ``n`` torch threads; returns the previous setting (batches here are small)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    return previous
