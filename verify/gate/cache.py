"""The gate's result cache: answers keyed by what decides them, re-checked rather than trusted.

Key: sha256 of (model file sha256, spec sha256, verify version, check options including
the timeout).  What is stored and how a hit is used:

* **verified** with a certificate: the hit re-checks the stored certificate against the
  model and spec files with the independent checker
  (:func:`verify.certcheck.check_certificate`); only a valid certificate is reused;
* **falsified**: the stored counterexample is replayed on the original model
  (:func:`verify.falsify.base.replay`, onnxruntime on the model file); only a confirmed
  one is reused;
* **unknown** answers, and verified answers without a certificate (models that are not
  chains of affine layers and ReLUs), are not stored: there is nothing to re-check,
  and a re-run may decide them.

Entries are JSON files written atomically (several gate processes may share a cache).
The cache folder also holds the model sizes by sha256, the VNN-LIB files of family rows
and the module pictures of the HTML report.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from verify import __version__
from verify.certcheck import check_certificate
from verify.falsify.base import replay

FORMAT = "verify-gate-cache"
VERSION = 1
DEFAULT_FOLDER = Path(".verify-cache") / "gate"


def cache_key(model_sha256: str, spec_sha256: str, options: dict[str, Any]) -> str:
    """sha256 of everything that decides an answer."""
    text = json.dumps({"model": model_sha256, "spec": spec_sha256, "tool": __version__, "options": options},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class GateCache:
    """A cache folder; ``enabled=False`` keeps the folder for generated files but never reads
    or stores answers."""

    def __init__(self, folder: Path, enabled: bool = True) -> None:
        self.folder = Path(folder)
        self.enabled = enabled

    @property
    def spec_folder(self) -> Path:
        return self.folder / "specs"

    @property
    def picture_folder(self) -> Path:
        return self.folder / "pictures"

    def _entry_path(self, key: str) -> Path:
        return self.folder / "results" / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored entry for ``key`` (None when absent, disabled or unreadable)."""
        if not self.enabled:
            return None
        entry = _read_json(self._entry_path(key))
        if entry is None or entry.get("format") != FORMAT or entry.get("version") != VERSION:
            return None
        return entry

    def put(self, key: str, result: dict[str, Any], certificate: dict[str, Any] | None,
            inputs: dict[str, Any]) -> bool:
        """Store a re-checkable answer; returns whether it was stored."""
        if not self.enabled or not storable(result, certificate):
            return False
        entry = {"format": FORMAT, "version": VERSION, "stored": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "inputs": inputs, "result": result, "certificate": certificate}
        _write_json(self._entry_path(key), entry)
        return True

    def model_sizes(self, sha256: str) -> tuple[int, int] | None:
        data = _read_json(self.folder / "models" / f"{sha256}.json")
        if not data or not isinstance(data.get("n_inputs"), int) or not isinstance(data.get("n_outputs"), int):
            return None
        return data["n_inputs"], data["n_outputs"]

    def store_model_sizes(self, sha256: str, sizes: tuple[int, int]) -> None:
        _write_json(self.folder / "models" / f"{sha256}.json", {"n_inputs": sizes[0], "n_outputs": sizes[1]})


def storable(result: dict[str, Any], certificate: dict[str, Any] | None) -> bool:
    """Only answers that a later run can re-check cheaply are stored."""
    if result.get("verdict") == "verified":
        return certificate is not None
    return result.get("verdict") == "falsified" and result.get("counterexample") is not None


def revalidate(entry: dict[str, Any], model_path: Path, spec_path: Path, model: Any = None,
               prop: Any = None) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    """Re-check a cache entry; returns ``(result, certificate)`` to reuse, or None to re-run.

    ``model`` and ``prop`` are callables giving the model to replay on (anything with
    ``evaluate``: onnxruntime on the file, :mod:`verify.gate.reference`, or the loaded
    model) and the property; only a falsified entry needs them, to replay its
    counterexample.  Neither path imports torch.
    """
    start = time.monotonic()
    result = dict(entry.get("result") or {})
    certificate = entry.get("certificate")
    if result.get("verdict") == "verified" and isinstance(certificate, dict):
        report = check_certificate(model_path, spec_path, certificate)
        if not report.valid:
            return None
        result["cache"] = {"hit": True, "original_seconds": result.get("seconds"),
                           "recheck": {"valid": True, "seconds": round(report.seconds, 4), "message": report.message}}
        result["seconds"] = time.monotonic() - start
        return result, certificate
    cex = result.get("counterexample")
    if result.get("verdict") == "falsified" and isinstance(cex, dict) and model is not None and prop is not None:
        try:
            x = np.asarray(cex["x"], dtype=np.float64)
            case = int(cex["case"])
        except (KeyError, TypeError, ValueError):
            return None
        the_prop = prop()
        if not 0 <= case < len(the_prop.cases):
            return None
        replayed = replay(model(), the_prop, x, "cache", case)
        if replayed is None:
            return None
        cex_json = replayed.to_json()
        cex_json["method"] = cex.get("method", "cache")
        result["counterexample"] = cex_json
        result["cache"] = {"hit": True, "original_seconds": result.get("seconds"),
                           "replay": {"confirmed": True, "seconds": round(time.monotonic() - start, 4)}}
        result["seconds"] = time.monotonic() - start
        return result, None
    return None


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomic write; a cache that cannot be written is skipped silently (it is only a cache)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, sort_keys=True))
        tmp.replace(path)
    except OSError:
        pass
