"""Module-graph pictures for the HTML report, drawn once and kept in the cache.

For each named property (not each family row) the model is compressed on the region of
the property's first case (:func:`verify.compress.compress_model`) and its modules drawn
as SVG (:func:`verify.modules.draw.draw_modules`), as ``verify graph --out`` does.  The
picture is keyed by the sha256 of model and spec and the verify version.  A picture is
decoration: when compression fails on a model, the report says why instead.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from verify import __version__
from verify.gate.plan import Item
from verify.gate.worker import get_model
from verify.spec import load_spec


def picture_key(model_sha256: str, spec_sha256: str) -> str:
    return hashlib.sha256(f"{model_sha256} {spec_sha256} {__version__} modules-v1".encode()).hexdigest()


def module_picture(item: Item, folder: Path) -> dict[str, Any]:
    """``{"svg": Path}`` of the item's module picture (drawn unless cached), or ``{"error": text}``."""
    path = folder / f"{picture_key(item.model_sha256, item.spec_sha256)[:32]}.svg"
    if path.is_file():
        return {"svg": path}
    try:
        # here, not on top: networkx, torch and matplotlib load only when a picture is drawn
        from verify.compress import compress_model
        from verify.modules.draw import draw_modules

        model = get_model(item.model_path)
        prop = load_spec(item.spec_path)
        result = compress_model(model, prop, case=0)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp.svg")
        title = f"{model.name} on {item.spec_path.name} (case 1 of {len(prop.cases)})"
        draw_modules(result.modules, model.n_inputs, tmp, title)
        tmp.replace(path)
        return {"svg": path}
    except Exception as exc:  # decoration only: never fail the gate over a picture
        return {"error": f"{type(exc).__name__}: {exc}"}
