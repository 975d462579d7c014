"""verify's one network representation: a typed DAG of tensor operations.

Layer 1 of the pipeline (model -> **IR** -> compress -> modules -> bounds ->
compose/refine -> certificate).  Loaders produce a :class:`Graph`
(:mod:`verify.ir.onnx_import`, :mod:`verify.ir.torch_import`); everything after them
reads it.  :mod:`verify.ir.ops` holds the operation set, one forward function per op.
"""

from verify.ir.graph import Graph, Node, Value

__all__ = ["Graph", "Node", "Value"]
