"""What proving one case gives: :class:`CaseOutcome` (shared by every prover of
:mod:`verify.refine` and by :mod:`verify.compose`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class CaseOutcome:
    """``status``: ``verified``, ``candidate`` (a point to replay) or ``open``."""

    status: str
    method: str
    min_lb: float
    proof: dict[str, Any] | None = None
    candidate: np.ndarray | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    #: the split tree of a proof on an IR network (:class:`verify.refine.dag_split.DagTree`)
    tree: Any = None
