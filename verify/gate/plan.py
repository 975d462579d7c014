"""Turn a validated manifest into the list of checks to run (one :class:`Item` per property
and model, one per family row and model), checking up front that every spec and dataset
fits its model, so that input errors stop the gate before anything runs.

Models are read once each; their sizes are remembered in the cache (by sha256) so that
an unchanged re-run does not need to convert the model again (nor import torch).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verify.errors import ManifestError, SpecError
from verify.gate.family import ball_property, vnnlib_text, write_spec
from verify.gate.manifest import FamilyEntry, Manifest, read_family_rows
from verify.gate.worker import get_model
from verify.spec import Template, file_sha256, load_spec

#: What each property of a family must achieve when the family has a ``min-verified-rate``:
#: nothing row by row (the family's rate is the requirement).
FAMILY_RATE = "family-rate"


@dataclass
class ModelInfo:
    name: str
    path: Path
    sha256: str
    n_inputs: int
    n_outputs: int


@dataclass
class Item:
    """One check: a property on a model."""

    id: str
    name: str
    model: str
    model_path: Path
    model_sha256: str
    spec_path: Path
    spec_sha256: str
    timeout: float
    require: str
    family: str | None = None
    row: int | None = None
    label: int | None = None
    ball: dict[str, Any] | None = None  # family rows: center, eps, clip, label, n_outputs
    description: str = ""


@dataclass
class FamilyRun:
    """One family on one model: which items are its rows."""

    id: str
    entry: FamilyEntry
    model: str
    items: list[Item] = field(default_factory=list)


@dataclass
class Plan:
    manifest: Manifest
    models: dict[str, ModelInfo]
    items: list[Item]
    families: list[FamilyRun]


def qualified(name: str, model: str, several_models: bool) -> str:
    """The id of a property: its name, with ``@model`` when the manifest gates several models."""
    return f"{name}@{model}" if several_models else name


def build_plan(manifest: Manifest, cache: Any) -> Plan:
    """Hash and size the models, load and fit the specs, expand the families."""
    models: dict[str, ModelInfo] = {}
    for entry in manifest.models.values():
        sha = file_sha256(entry.path)
        sizes = cache.model_sizes(sha)
        if sizes is None:
            model = get_model(entry.path)
            sizes = (model.n_inputs, model.n_outputs)
            cache.store_model_sizes(sha, sizes)
        models[entry.name] = ModelInfo(entry.name, entry.path, sha, int(sizes[0]), int(sizes[1]))
    several = len(models) > 1
    items: list[Item] = []
    for prop_entry in manifest.properties:
        if prop_entry.template_source is not None:  # a template table: its Python spec file, written once
            spec_path, _ = write_spec(cache.spec_folder, "templates", prop_entry.template_source, ".py")
            prop_entry = dataclasses.replace(prop_entry, spec=spec_path)
        prop = load_spec(prop_entry.spec, templates=True)
        # a template (docs/relational.md) has no fingerprint of its own: its spec file's bytes name it
        spec_sha = file_sha256(prop_entry.spec) if isinstance(prop, Template) else str(prop.sha256)
        for m in prop_entry.models:
            info = models[m]
            prop.check_fits(info.n_inputs, info.n_outputs, str(info.path))
            items.append(Item(qualified(prop_entry.name, m, several), prop_entry.name, m, info.path, info.sha256,
                              prop_entry.spec, spec_sha, prop_entry.timeout, prop_entry.require,
                              description=prop_entry.description))
    families: list[FamilyRun] = []
    for fam in manifest.families:
        for m in fam.models:
            run = FamilyRun(qualified(fam.name, m, several), fam, m)
            run.items = _family_items(fam, run.id, models[m], manifest, cache)
            families.append(run)
            items.extend(run.items)
    return Plan(manifest, models, items, families)


def _family_items(fam: FamilyEntry, fam_id: str, info: ModelInfo, manifest: Manifest, cache: Any) -> list[Item]:
    if info.n_outputs < 2:
        raise ManifestError(f"{manifest.path}: family {fam.name!r}: model {info.name!r} has {info.n_outputs} "
                            "output; a robustness family needs a classifier (two or more outputs)")
    centres, labels = read_family_rows(fam, manifest.path, info.n_inputs, info.n_outputs)
    require = FAMILY_RATE if fam.min_verified_rate is not None else fam.require
    items = []
    for row, (center, label) in enumerate(zip(centres, labels)):
        item_id = f"{fam_id}[{row}]"
        try:
            prop = ball_property(center, fam.eps, fam.clip, int(label), info.n_outputs, item_id)
        except SpecError as exc:
            raise ManifestError(f"{manifest.path}: family {fam.name!r}: row {row} of {fam.data}: {exc} (is the row "
                                f"outside 'clip' = {list(fam.clip or ())} by more than eps?)") from None
        text = vnnlib_text(prop, int(label), f"{fam.name}, row {row} of {fam.data.name}, eps {fam.eps!r}")
        path, sha = write_spec(cache.spec_folder, fam.name, text)
        ball = {"center": [float(v) for v in center], "eps": fam.eps, "clip": fam.clip, "label": int(label),
                "n_outputs": info.n_outputs}
        items.append(Item(item_id, fam.name, info.name, info.path, info.sha256, path, sha, fam.timeout, require,
                          family=fam_id, row=row, label=int(label), ball=ball, description=fam.description))
    return items
