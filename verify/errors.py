"""One error hierarchy for everything the user can get wrong, and the exit codes.

Every error a user can cause (a bad file, a spec that does not fit the model, an
unsupported operator) is a :class:`VerifyError`.  Its message is one line that says
what is wrong and, where possible, what to do about it.  The CLI prints that line and
exits with :data:`EXIT_INPUT_ERROR`; it never shows a Python traceback for them.
Anything else that escapes is a bug in verify and exits with :data:`EXIT_INTERNAL`.
"""

from __future__ import annotations

#: The property holds on the whole region (a certificate backs it).
EXIT_VERIFIED = 0
#: A counterexample was found and replayed on the original model.
EXIT_FALSIFIED = 1
#: Bad command line or bad input file (model, spec, manifest, certificate).
EXIT_INPUT_ERROR = 2
#: Neither verified nor falsified within the time or method limits.
EXIT_UNKNOWN = 3
#: A bug in verify: please report it with the traceback printed by ``--debug``.
EXIT_INTERNAL = 4


class VerifyError(Exception):
    """Base class of every error the user can cause or fix."""

    exit_code = EXIT_INPUT_ERROR


class InputFileError(VerifyError):
    """A file is missing, unreadable or not in the expected format."""


class ModelError(VerifyError):
    """The model cannot be loaded or contains something we cannot reason about."""


class UnsupportedOperatorError(ModelError):
    """The ONNX graph uses an operator (or an attribute of one) we do not support."""

    def __init__(self, op_type: str, node_name: str, detail: str = "") -> None:
        self.op_type = op_type
        self.node_name = node_name
        extra = f": {detail}" if detail else ""
        super().__init__(
            f"unsupported ONNX operator {op_type!r} at node {node_name!r}{extra}; "
            "supported: " + ", ".join(SUPPORTED_OPS_HINT)
        )


SUPPORTED_OPS_HINT = (
    "Gemm", "MatMul", "Conv", "ConvTranspose", "BatchNormalization", "Pad", "Add", "Sub", "Mul", "Div",
    "Relu", "LeakyRelu", "Sigmoid", "Tanh", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
    "Flatten", "Reshape", "Transpose", "Concat", "Slice", "Squeeze", "Unsqueeze", "Identity", "Dropout",
    "Constant", "ConstantOfShape", "Shape", "Gather", "Cast", "Softmax",
)


class SpecError(VerifyError):
    """A property specification is malformed or inconsistent."""


class SpecSyntaxError(SpecError):
    """A spec file could not be parsed; the message names file, line and column."""

    def __init__(self, path: str, line: int, column: int, message: str) -> None:
        self.path = path
        self.line = line
        self.column = column
        super().__init__(f"{path}:{line}:{column}: {message}")


class SpecMismatchError(SpecError):
    """The spec does not fit the model (input or output sizes differ)."""


class CertificateError(VerifyError):
    """A certificate file is malformed or does not belong to the given model and spec."""


class ManifestError(VerifyError):
    """A gate manifest is malformed (unknown keys, missing files, duplicate names)."""


class BackendError(Exception):
    """A bounding backend failed on an input it should handle (a bug, not user input)."""
