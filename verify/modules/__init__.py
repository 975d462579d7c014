"""Modules of a compressed network: series stages, parallel components, interfaces, and pictures."""

from verify.modules.split import Module, module_graph, split_modules, split_net

__all__ = ["Module", "module_graph", "split_modules", "split_net"]
