"""The module split, which lives in :mod:`verify.compress.modules` (the last pass of
compression); these names stay importable from here."""

from verify.compress.modules import (
    MAX_STAGE_EDGES,
    Module,
    dependency,
    module_graph,
    set_phases_from_bounds,
    split_modules,
    split_net,
    unstable_mask,
)

__all__ = ["MAX_STAGE_EDGES", "Module", "dependency", "module_graph", "set_phases_from_bounds", "split_modules",
           "split_net", "unstable_mask"]
