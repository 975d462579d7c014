"""Where found counterexamples are kept, so that a rerun finds them first.

Storage is a hypothesis example database (:class:`hypothesis.database.DirectoryBasedExampleDatabase`),
by default ``.verify-cache/examples`` under the current directory; the environment
variable ``VERIFY_EXAMPLES_DIR`` names another directory, and ``VERIFY_EXAMPLES_DIR=off``
turns the database off.

Entries are the final (shrunk) witnesses of every falsifier, hypothesis or PGD, under a
key derived from the model's and the property's sha256 (:func:`witness_key`), as JSON
with the float32 inputs written as hex so they round-trip exactly.  hypothesis's own
replay of failing examples is not used: it is switched off for seeded runs, and
searches here are seeded so that they are deterministic.

Stored inputs are never trusted: each is replayed on the original model again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from verify.spec.property import Property

if TYPE_CHECKING:
    from hypothesis.database import ExampleDatabase

    from verify.model.network import Model

#: Default location, relative to the current directory.
DEFAULT_DIR = Path(".verify-cache") / "examples"
#: Environment variable that overrides the location ("off" disables the database).
ENV_VAR = "VERIFY_EXAMPLES_DIR"
#: Bumped when the stored format changes.
FORMAT = b"v1"


def database_dir() -> Path | None:
    """The directory in use: ``$VERIFY_EXAMPLES_DIR`` or ``.verify-cache/examples``; None when off."""
    value = os.environ.get(ENV_VAR)
    if value is None or value == "":
        return DEFAULT_DIR
    if value.lower() in ("off", "none", "0", "false"):
        return None
    return Path(value)


def open_database(path: str | Path | None | ExampleDatabase = "default") -> ExampleDatabase | None:
    """An example database at ``path`` ("default": :func:`database_dir`; None: no database)."""
    if isinstance(path, str) and path == "default":
        path = database_dir()
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)):
        return path  # an example database already
    from hypothesis.database import DirectoryBasedExampleDatabase  # here: hypothesis only when a database is used

    return DirectoryBasedExampleDatabase(str(path))


def model_digest(model: Model) -> str:
    """sha256 of the model file, or of a torch module's structure and weights (with its IR's
    constants: a module that runs an IR keeps its weights there, not in its state)."""
    if model.sha256:
        return model.sha256
    h = hashlib.sha256(repr(model.net).encode())
    for node in model.ir.nodes if model.ir is not None else []:
        h.update(f"{node.op}:{node.inputs}:{node.output}".encode())
        for key in sorted(node.attrs):
            value = node.attrs[key]
            h.update(key.encode())
            h.update(np.ascontiguousarray(value).tobytes() if isinstance(value, np.ndarray) else repr(value).encode())
    for name, tensor in list(model.net.state_dict().items()):
        h.update(name.encode())
        h.update(np.ascontiguousarray(tensor.detach().cpu().numpy()).tobytes())
    return h.hexdigest()


def _key(kind: bytes, model: Model, prop: Property) -> bytes:
    return b"verify-" + kind + b"-" + FORMAT + b":" + model_digest(model).encode() + b":" + \
        (prop.sha256 or prop.fingerprint()).encode()


def witness_key(model: Model, prop: Property) -> bytes:
    """The key under which final witnesses are kept for this model and property."""
    return _key(b"witness", model, prop)


class WitnessStore:
    """Final witnesses per model and property, in a hypothesis example database."""

    def __init__(self, database: ExampleDatabase) -> None:
        self.database = database

    def save(self, model: Model, prop: Property, x: np.ndarray, method: str) -> None:
        value = {"x": np.asarray(x, dtype=np.float32).reshape(-1).tobytes().hex(), "method": method}
        self.database.save(witness_key(model, prop), json.dumps(value, sort_keys=True).encode())

    def load(self, model: Model, prop: Property) -> list[tuple[np.ndarray, str]]:
        """Stored ``(x, method)`` pairs, in a fixed order (smallest entries first)."""
        out = []
        for raw in sorted(self.database.fetch(witness_key(model, prop)), key=lambda b: (len(b), b)):
            try:
                value = json.loads(raw.decode())
                x = np.frombuffer(bytes.fromhex(value["x"]), dtype=np.float32).copy()
                method = str(value.get("method", "unknown"))
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
            if x.shape[0] == prop.n_inputs:
                out.append((x, method))
        return out

    def forget(self, model: Model, prop: Property, x: np.ndarray, method: str) -> None:
        value = {"x": np.asarray(x, dtype=np.float32).reshape(-1).tobytes().hex(), "method": method}
        self.database.delete(witness_key(model, prop), json.dumps(value, sort_keys=True).encode())
