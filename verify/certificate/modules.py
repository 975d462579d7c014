"""Build the ``modules`` proof of a case: module claims and how they compose (producer side).

The checker side is :mod:`verify.certcheck.modules`; the schema is documented in
:mod:`verify.certificate.build`.  Claims come from the backends of
:mod:`verify.bounds.backend` (already pushed outward by the claim slack); this module only
encodes them, in order, with the links between consecutive modules.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from verify.bounds.backend import ModuleClaim
from verify.certcheck.encoding import encode_array


def encode_evidence(obj: Any) -> Any:
    """JSON form of evidence: arrays encoded exactly, containers recursively."""
    if isinstance(obj, np.ndarray):
        return encode_array(obj.astype(np.float64))
    if isinstance(obj, dict):
        return {str(k): encode_evidence(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [encode_evidence(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return obj


def claim_json(claim: ModuleClaim) -> dict[str, Any]:
    """One module claim as certificate JSON."""
    out: dict[str, Any] = {
        "name": claim.name,
        "blocks": [int(claim.blocks[0]), int(claim.blocks[1])],
        "backend": claim.backend,
        "input": {"lower": encode_array(claim.in_lower), "upper": encode_array(claim.in_upper)},
        "evidence": encode_evidence(claim.evidence),
    }
    if claim.margins is not None:
        out["polytopes"] = {"margin": encode_array(claim.margins)}
    else:
        assert claim.out_lower is not None and claim.out_upper is not None
        out["output"] = {"lower": encode_array(claim.out_lower), "upper": encode_array(claim.out_upper)}
    return out


def modules_proof(case_index: int, claims: Sequence[ModuleClaim], linear: Sequence[int] = ()) -> dict[str, Any]:
    """The case proof of kind ``modules``: the claims in block order, each consecutive pair
    linked at the ReLU layer between them (``relu(B_i)`` inside ``A_{i+1}``).  ``linear``
    lists ReLU layers that an earlier partition cut at and the composition crossed with
    linear relaxations instead (modules merged; informational)."""
    links = [{"from": a.name, "to": b.name, "layer": int(a.blocks[1]), "rule": "relu-box"}
             for a, b in zip(claims[:-1], claims[1:])]
    return {"case": case_index, "kind": "modules",
            "modules": {"claims": [claim_json(c) for c in claims], "composition": links,
                        "linear": [int(k) for k in linear]}}
