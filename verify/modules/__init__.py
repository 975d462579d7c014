"""Modules of a compressed network: series stages, parallel components, interfaces, and pictures.

The split is compression's last pass (:mod:`verify.compress.modules`); the pictures are
:mod:`verify.modules.draw`.
"""

from verify.compress.modules import Module, module_graph, split_modules, split_net

__all__ = ["Module", "module_graph", "split_modules", "split_net"]
