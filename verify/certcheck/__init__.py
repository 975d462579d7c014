"""The independent certificate checker: the small trusted core of verify.

Trusted (what a "valid" answer relies on): this folder (about 1,600 lines: its own reader
of the ONNX protobuf format, the ONNX chain reader, rigorous float64 bounds, the
certificate semantics for split trees and for module claims); numpy's float64 arithmetic
(IEEE-754 round to nearest); verify's spec reader (``verify.spec``) for the property's
boxes and constraints; hashlib for the file hashes; and, for module claims made by the
exact backend only, Z3 (re-solving the claim on an exact encoding with Python's
``fractions``).  Not trusted: everything else in verify — the converter, graph
compression, auto_LiRPA, the bound engine, branch and bound.  The checker re-derives
every bound it relies on from the model file, using only the split decisions and
relaxation slopes recorded in the certificate.
"""

from verify.certcheck.checker import CertReport, check_certificate, load_certificate

__all__ = ["CertReport", "check_certificate", "load_certificate"]
