"""The independent certificate checker: the small trusted core of verify.

Trusted (what a "valid" answer relies on): this folder (about 3,100 lines of code, 3,900 with
comments and docstrings: its own reader of the ONNX protobuf format; two readers of the model on
it, the chain reader (``network``) and the general graph reader (``dag_network``: a DAG of
dense, convolution, per-coordinate affine, index and sum operations and relu, leaky_relu, sigmoid,
tanh, max-pool, softmax); rigorous float64 bounds on chains (``bounds``) and on graphs
(``dag_bounds``: interval and CROWN bounds by docs/relaxations.md, split multipliers); the
certificate semantics for split trees (``input-split``, ``relu-split``, ``dag``) and for module
claims); numpy's float64 arithmetic (IEEE-754 round to nearest); for sigmoid, tanh and softmax in
``dag`` proofs only, numpy's ``exp``, *assumed* within 4 ulp of the exact exponential (the
enclosures widen by 8 ulp; glibc's and numpy's SIMD ``exp`` are within 1 ulp); verify's spec reader
(``verify.spec``) for the property's boxes and constraints; hashlib for the file hashes; and, for
module claims made by the exact backend only, Z3 (re-solving the claim on an exact encoding with
Python's ``fractions``).  Not trusted: everything else in verify — the converter, graph
compression, auto_LiRPA, the bound engines (``verify.bounds``, including ``verify.bounds.dag``),
branch and bound.  The checker re-derives every bound it relies on from the model file, using
only the split decisions, relaxation slopes and split multipliers recorded in the certificate
(multipliers and slopes can only weaken a bound when badly chosen, never make a false claim pass).
"""

from verify.certcheck.checker import CertReport, check_certificate, load_certificate

__all__ = ["CertReport", "check_certificate", "load_certificate"]
