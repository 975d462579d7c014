"""The model as a networkx graph over flat vectors: extraction and evaluation."""

from verify.graph.evaluate import evaluate_graph
from verify.graph.extract import INPUT, extract_graph

__all__ = ["INPUT", "evaluate_graph", "extract_graph"]
