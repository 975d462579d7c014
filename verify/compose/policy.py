"""Which backend bounds which module: exact Z3 for few unstable ReLUs, else alpha-CROWN, else CROWN.

The rule, per module (overridable for all modules or per module name / block range):

* no ReLU inside the module (one affine block): ``crown`` — the interval of an affine
  map over a box is exact, no solver needed;
* at most ``max_unstable`` open ReLUs inside, a Z3 cost estimate ``2^open * objectives``
  (objectives: two per output, or one per unsafe polytope) within ``z3_max_cost``, and
  at least ``z3_min_seconds`` left: ``z3`` (measured: ``z3.Optimize`` takes about 0.1 s
  per objective on an ACAS Xu layer pair even with 2 open ReLUs, so the estimate is kept
  small; a Z3 timeout falls back to alpha-CROWN, see :meth:`Policy.fallback`);
* at least ``alpha_min_seconds`` left: ``alpha-crown``;
* some time left: ``crown``; none: ``interval``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from verify.bounds.backend import Backend
from verify.bounds.crown_backend import CrownBackend
from verify.bounds.interval import IntervalBackend
from verify.bounds.lirpa_backend import LirpaBackend

BACKENDS = ("interval", "crown", "alpha-crown", "lirpa-crown", "lirpa-alpha", "z3")


def make_backend(name: str, z3_timeout: float = 10.0, alpha_iterations: int = 20) -> Backend:
    """A backend by name (one of :data:`BACKENDS`)."""
    if name == "interval":
        return IntervalBackend()
    if name in ("crown", "alpha-crown"):
        return CrownBackend(alpha=name == "alpha-crown", iterations=alpha_iterations)
    if name in ("lirpa-crown", "lirpa-alpha"):
        return LirpaBackend(alpha=name == "lirpa-alpha", iterations=alpha_iterations)
    if name == "z3":
        from verify.bounds.z3_backend import Z3Backend  # here: z3 loads only when a module is bounded exactly

        return Z3Backend(timeout=z3_timeout)
    raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(BACKENDS)}")


@dataclass
class Policy:
    """The backend rule (see the module docstring).  ``override``: one backend name for every
    module, or a dict from module name (``"M2"``) or block range (``"3-4"``) to a name."""

    max_unstable: int = 12
    z3_max_cost: float = 64.0
    z3_min_seconds: float = 2.0
    z3_timeout: float = 5.0
    alpha_min_seconds: float = 0.2
    alpha_iterations: int = 20
    override: str | dict[str, str] | None = None
    _backends: dict[str, Backend] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        names = [self.override] if isinstance(self.override, str) else \
            list(self.override.values()) if self.override else []
        for name in names:
            if name not in BACKENDS:
                raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(BACKENDS)}")

    def choose(self, name: str, blocks: tuple[int, int], n_open: int, n_objectives: int, time_left: float) -> str:
        """The backend for a module with ``n_open`` open ReLUs inside and ``n_objectives`` claims."""
        if isinstance(self.override, str):
            return self.override
        if isinstance(self.override, dict):
            for key in (name, f"{blocks[0]}-{blocks[1]}"):
                if key in self.override:
                    return self.override[key]
        if blocks[0] == blocks[1]:
            return "crown"
        if n_open <= self.max_unstable and 2.0 ** n_open * n_objectives <= self.z3_max_cost and \
                time_left >= self.z3_min_seconds:
            return "z3"
        if time_left >= self.alpha_min_seconds:
            return "alpha-crown"
        return "crown" if time_left > 0 else "interval"

    def backend(self, name: str) -> Backend:
        """The (cached) backend object of that name."""
        if name not in self._backends:
            self._backends[name] = make_backend(name, self.z3_timeout, self.alpha_iterations)
        return self._backends[name]

    def fallback(self, name: str) -> str:
        """The backend to try when ``name`` failed on a module (``""``: none left)."""
        return {"z3": "alpha-crown", "lirpa-alpha": "alpha-crown", "lirpa-crown": "crown",
                "alpha-crown": "crown", "crown": "interval"}.get(name, "")
