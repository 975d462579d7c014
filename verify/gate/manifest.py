"""Read and validate a gate manifest (``verify.toml`` or ``[tool.verify]`` in ``pyproject.toml``).

The manifest says which models to gate, which properties each must satisfy and how
strictly (see docs/gate.md for the full format)::

    timeout = 10                  # default seconds per property
    require = "verified"          # default requirement: "verified", "not-falsified" or "none"

    [models]
    tiny = "examples/tiny/classifier.onnx"

    [[properties]]
    name = "class0-robust"
    spec = "specs/tiny_robust_class0.vnnlib"

    [[families]]                  # one L-infinity robustness property per dataset row
    name = "points"
    data = "examples/tiny/points.npy"
    eps = 0.02

Paths are relative to the manifest's folder.  Every mistake is a :class:`ManifestError`
naming the file, the table and the key, and saying what was expected.  Families are
validated here (file readable, numeric, a label column) and expanded into rows by
:func:`read_family_rows`.
"""

from __future__ import annotations

import difflib
import io
import math
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from verify.errors import InputFileError, ManifestError, SpecError
from verify.model.onnx_file import display, one_line, stat_regular_file
from verify.runtime import MAX_SECONDS

#: What a property must achieve for the gate to pass.
REQUIREMENTS = ("verified", "not-falsified", "none")
DEFAULT_TIMEOUT = 30.0
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
#: Largest manifest file read.
MAX_MANIFEST_BYTES = 16 * 1024**2
#: Default limit on a family's data file; ``VERIFY_MAX_DATA_BYTES`` overrides it.
DEFAULT_MAX_DATA_BYTES = 2 * 1024**3
MAX_DATA_BYTES_ENV = "VERIFY_MAX_DATA_BYTES"
#: Deepest nesting of TOML arrays and inline tables accepted (a manifest needs 3).
MAX_TOML_DEPTH = 32
#: Longest integer literal accepted (digits; TOML integers are 64-bit).
MAX_INT_DIGITS = 20
#: Largest seed accepted (the searches seed numpy and torch with it).
MAX_SEED = 2**32 - 1
#: Longest free text (a description).
MAX_TEXT = 10_000
# strings and comments of TOML text (removed before scanning for brackets and numbers)
_TOML_SKIP = re.compile("|".join([
    r'"""(?:[^"\\]|\\.|"(?!""))*"""',      # multi-line basic string
    r"'''(?:[^']|'(?!''))*'''",         # multi-line literal string
    r'"(?:[^"\\\n]|\\.)*"',               # basic string
    r"'[^'\n]*'",                         # literal string
    r"#[^\n]*",                           # comment
]))
_LONG_INT = re.compile(r"(?<![\w.+-])[+-]?\d[\d_]{" + str(MAX_INT_DIGITS) + r",}(?![\w.])")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")

#: The parameters each template of the manifest takes (besides its region).
TEMPLATE_PARAMETERS = {"monotone": ("feature", "output", "increasing"), "fair": ("sensitive", "output", "tolerance"),
                       "lipschitz": ("L", "output"), "output_range": ("output", "lower_bound", "upper_bound"),
                       "equivalent": ("other", "delta", "output")}
_REGION_KEYS = {"lower", "upper", "center", "eps", "clip"}
#: Manifest keys named otherwise in the builders (output_range's bounds; lower/upper name the region's box).
_BUILDER_NAMES = {"lower_bound": "lower", "upper_bound": "upper"}
_SPEC_PROPERTY_KEYS = ("name", "spec", "model", "models", "timeout", "require", "description")


_TOP_KEYS = {"timeout": "seconds per property (a number > 0)",
             "require": "default requirement: " + ", ".join(REQUIREMENTS),
             "seed": "random seed of the counterexample searches (an integer)",
             "models": "a table name = \"model.onnx\" (or a list of paths)",
             "properties": "[[properties]] tables",
             "families": "[[families]] tables"}
_PROPERTY_KEYS = {"name": "a unique name (letters, digits, . _ -)",
                  "spec": "a .vnnlib or Python spec file",
                  "template": "instead of spec: " + ", ".join(TEMPLATE_PARAMETERS) + " (docs/relational.md)",
                  "lower": "a template's region: the box's lower bounds (with upper)",
                  "upper": "a template's region: the box's upper bounds (with lower)",
                  "center": "a template's region: the L-infinity ball's centre (with eps)",
                  "eps": "a template's region: the ball's radius",
                  "clip": "a template's ball clipped to [low, high]",
                  **{p: "a template parameter (docs/relational.md)" for ps in (
                      ("feature", "output", "increasing", "sensitive", "tolerance", "L", "delta", "other",
                       "lower_bound", "upper_bound"),)
                     for p in ps},
                  "model": "the model name (default: every model)",
                  "models": "a list of model names (default: every model)",
                  "timeout": "seconds (a number > 0)",
                  "require": " or ".join(REQUIREMENTS),
                  "description": "free text shown in the reports"}
_FAMILY_KEYS = {"name": "a unique name (letters, digits, . _ -)",
                "data": "a .npy or .csv file, one row per input, the expected label in one column",
                "eps": "the L-infinity radius (a number >= 0)",
                "clip": "[low, high]: clip the balls to this input range",
                "label-column": "the column holding the expected label (default -1, the last)",
                "limit": "use only the first N rows",
                "model": "the model name (default: every model)",
                "models": "a list of model names (default: every model)",
                "timeout": "seconds per row (a number > 0)",
                "require": "what each row must achieve: " + " or ".join(REQUIREMENTS),
                "min-verified-rate": "a fraction in [0, 1]: the family passes when at least this share of "
                                     "rows is verified (then `require` is not applied row by row)",
                "description": "free text shown in the reports"}


@dataclass(frozen=True)
class ModelEntry:
    name: str
    path: Path


@dataclass(frozen=True)
class PropertyEntry:
    name: str
    spec: Path | None  # None for a template written in the manifest (``template_source`` then)
    models: tuple[str, ...]
    timeout: float
    require: str
    description: str = ""
    #: the Python spec file a ``template = ...`` table stands for (the plan writes it into the cache's spec folder)
    template_source: str | None = None


@dataclass(frozen=True)
class FamilyEntry:
    name: str
    data: Path
    eps: float
    models: tuple[str, ...]
    timeout: float
    require: str
    clip: tuple[float, float] | None = None
    label_column: int = -1
    limit: int | None = None
    min_verified_rate: float | None = None
    description: str = ""


@dataclass
class Manifest:
    path: Path
    models: dict[str, ModelEntry]
    properties: list[PropertyEntry] = field(default_factory=list)
    families: list[FamilyEntry] = field(default_factory=list)
    seed: int = 0

    @property
    def root(self) -> Path:
        return self.path.parent


def find_manifest(start: Path | None = None) -> Path:
    """``verify.toml`` in ``start`` (default: the working folder), else its ``pyproject.toml``
    when that has a ``[tool.verify]`` table."""
    folder = Path() if start is None else Path(start)
    candidate = folder / "verify.toml"
    if candidate.is_file():
        return candidate
    pyproject = folder / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            data = {}
        if isinstance(data.get("tool"), dict) and "verify" in data["tool"]:
            return pyproject
    raise ManifestError(f"no manifest in {folder.resolve()}: create verify.toml (see docs/gate.md) or add a "
                        "[tool.verify] table to pyproject.toml, or pass --manifest FILE")


def _read_file(path: Path, limit: int, what: str) -> bytes:
    """The bytes of the regular file at ``path`` (at most ``limit``), never blocking on a
    FIFO or device; one-line :class:`InputFileError` otherwise."""
    stat_regular_file(path, what)
    shown = display(path)
    try:
        fd = os.open(str(path), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise InputFileError(f"{what} not readable: {shown} ({exc.strerror or type(exc).__name__})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # the path changed since the stat
            raise InputFileError(f"{what} is not a regular file: {shown}")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise InputFileError(f"{what} not readable: {shown} ({exc.strerror or type(exc).__name__})") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise InputFileError(f"{what} {shown} has more than {limit} bytes, the limit")
    return data


def _toml_text(path: Path, data: bytes) -> str:
    """The manifest's text, checked before ``tomllib`` parses it: UTF-8, arrays and inline
    tables nested at most :data:`MAX_TOML_DEPTH` deep, integers of at most
    :data:`MAX_INT_DIGITS` digits (``tomllib`` recurses on nesting and refuses to convert
    longer integers with a ValueError that names neither file nor line)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path}: not UTF-8 text (byte {exc.start} is not valid UTF-8)") from None
    bare = _TOML_SKIP.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), text)
    long = _LONG_INT.search(bare)
    if long:
        line = bare.count("\n", 0, long.start()) + 1
        raise ManifestError(f"{path}: line {line}: an integer of {len(long.group())} digits; TOML integers are "
                            f"64-bit (at most {MAX_INT_DIGITS} digits here)")
    brackets = np.frombuffer(bare.encode("utf-8").translate(None, _NOT_BRACKETS), dtype=np.uint8)
    if brackets.size:
        depth = np.cumsum(np.where((brackets == ord("[")) | (brackets == ord("{")), 1, -1), dtype=np.int64)
        if depth.max() > MAX_TOML_DEPTH:
            raise ManifestError(f"{path}: arrays or inline tables nested more than {MAX_TOML_DEPTH} deep")
    return text


def load_manifest(path: str | Path) -> Manifest:
    """Parse and validate a manifest; raises :class:`ManifestError` on any mistake."""
    path = Path(path)
    try:
        data = _read_file(path, MAX_MANIFEST_BYTES, "manifest")
    except InputFileError as exc:
        raise ManifestError(f"{exc} (expected verify.toml or a pyproject.toml with a [tool.verify] table)") from None
    shown = Path(display(path))
    try:
        data = tomllib.loads(_toml_text(shown, data))
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{shown}: not valid TOML: {exc}") from None
    prefix = ""
    if path.name == "pyproject.toml" or ("tool" in data and isinstance(data["tool"], dict)
                                         and "verify" in data["tool"]):
        tool = data.get("tool", {})
        if not isinstance(tool, dict) or "verify" not in tool:
            raise ManifestError(f"{shown}: no [tool.verify] table; add one (see docs/gate.md)")
        data, prefix = tool["verify"], "tool.verify."
    return _Reader(path, prefix).manifest(data)


class _Reader:
    """Validation with messages that name the file, the table and the key."""

    def __init__(self, path: Path, prefix: str) -> None:
        self.path = path
        self.prefix = prefix
        self.root = path.parent

    def fail(self, where: str, message: str) -> ManifestError:
        return ManifestError(f"{self.path}: {where}: {message}")

    def check_keys(self, table: dict[str, Any], allowed: dict[str, str], where: str) -> None:
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, list(allowed), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise self.fail(where, f"unknown key {key!r}{hint}; expected one of: " + ", ".join(allowed))

    def manifest(self, data: Any) -> Manifest:
        top = f"[{self.prefix.rstrip('.')}]" if self.prefix else "top level"
        if not isinstance(data, dict):
            raise self.fail(top, "expected a table")
        self.check_keys(data, _TOP_KEYS, top)
        timeout = self.seconds(data.get("timeout", DEFAULT_TIMEOUT), top, "timeout")
        require = self.requirement(data.get("require", "verified"), top)
        seed = data.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
            raise self.fail(top, f"key 'seed': expected a whole number 0..{MAX_SEED}, got {_shown(seed)}")
        models = self.models(data.get("models"))
        manifest = Manifest(self.path, models, seed=seed)
        names: dict[str, str] = {}
        properties = data.get("properties", [])
        if not isinstance(properties, list):
            raise self.fail(top, f"'properties' must be an array of tables ([[{self.prefix}properties]])")
        for i, table in enumerate(properties):
            entry = self.property(table, i, timeout, require, models)
            self.unique(names, entry.name, f"[[{self.prefix}properties]] #{i + 1}")
            manifest.properties.append(entry)
        families = data.get("families", [])
        if not isinstance(families, list):
            raise self.fail(top, f"'families' must be an array of tables ([[{self.prefix}families]])")
        for i, table in enumerate(families):
            fam = self.family(table, i, timeout, require, models)
            self.unique(names, fam.name, f"[[{self.prefix}families]] #{i + 1}")
            manifest.families.append(fam)
        if not names:
            raise self.fail(top, f"no properties: add [[{self.prefix}properties]] or [[{self.prefix}families]] "
                                 "tables (see docs/gate.md)")
        return manifest

    def unique(self, names: dict[str, str], name: str, where: str) -> None:
        if name in names:
            raise self.fail(where, f"duplicate name {name!r} (already used by {names[name]}); names must be unique")
        names[name] = where

    def models(self, value: Any) -> dict[str, ModelEntry]:
        where = f"[{self.prefix}models]"
        if value is None:
            raise self.fail(where, "missing: add a [models] table, e.g. mymodel = \"model.onnx\"")
        pairs: list[tuple[str, Any]]
        if isinstance(value, dict):
            pairs = list(value.items())
        elif isinstance(value, list):
            pairs = [(Path(str(v)).stem, v) for v in value]
        else:
            raise self.fail(where, "expected a table name = \"file.onnx\" or a list of paths")
        if not pairs:
            raise self.fail(where, "no models listed")
        out: dict[str, ModelEntry] = {}
        for name, file in pairs:
            self.name(name, where)
            if name in out:
                raise self.fail(where, f"duplicate model name {name!r}; name the models in a table instead")
            if not isinstance(file, str):
                raise self.fail(where, f"model {name!r}: expected a path string, got {_shown(file)}")
            out[name] = ModelEntry(name, self.existing(file, where, f"model {name!r}"))
        return out

    def name(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not _NAME.match(value):
            raise self.fail(where, f"name {_shown(value)}: use letters, digits, '.', '_' and '-', at most 200 "
                                   "(it names report entries and files)")
        return value

    def existing(self, file: str, where: str, what: str, limit: int | None = None) -> Path:
        """A path (relative to the manifest's folder) to a regular file, at most ``limit`` bytes."""
        p = Path(file)
        full = p if p.is_absolute() else self.root / p
        try:
            info = stat_regular_file(full, "file")
        except InputFileError as exc:
            if "file not found" in str(exc):
                raise self.fail(where, f"{what}: file not found: {display(file)} (paths are relative to "
                                       f"{self.root.resolve()})") from None
            raise self.fail(where, f"{what}: {exc}") from None
        if limit is not None and info.st_size > limit:
            raise self.fail(where, f"{what}: {display(file)} has {info.st_size} bytes, more than the limit of "
                                   f"{limit}; set {MAX_DATA_BYTES_ENV} to a larger number of bytes")
        return full

    def seconds(self, value: Any, where: str, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value) \
                or not 0 < value <= MAX_SECONDS:
            raise self.fail(where, f"key {key!r}: expected a number of seconds > 0, got {_shown(value)} (a finite "
                                   f"number, at most {MAX_SECONDS:g})")
        return float(value)

    def requirement(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or value not in REQUIREMENTS:
            raise self.fail(where, f"key 'require': expected one of {', '.join(map(repr, REQUIREMENTS))}, "
                                   f"got {_shown(value)}")
        return str(value)

    def text(self, value: Any, where: str, key: str) -> str:
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            raise self.fail(where, f"key {key!r}: expected a string of at most {MAX_TEXT} characters, "
                                   f"got {_shown(value)}")
        return value

    def model_names(self, table: dict[str, Any], where: str, models: dict[str, ModelEntry]) -> tuple[str, ...]:
        if "model" in table and "models" in table:
            raise self.fail(where, "give 'model' or 'models', not both")
        if "model" in table:
            chosen = [table["model"]]
        elif "models" in table:
            chosen = table["models"]
            if not isinstance(chosen, list) or not chosen:
                raise self.fail(where, "key 'models': expected a non-empty list of model names")
        else:
            return tuple(models)
        for m in chosen:
            if not isinstance(m, str) or m not in models:
                raise self.fail(where, f"model {_shown(m)} is not in [models]; known: {', '.join(models)}")
        return tuple(dict.fromkeys(chosen))

    def header(self, table: Any, kind: str, i: int) -> tuple[str, str]:
        where = f"[[{self.prefix}{kind}]] #{i + 1}"
        if not isinstance(table, dict):
            raise self.fail(where, "expected a table")
        if "name" not in table:
            raise self.fail(where, "missing key 'name'")
        name = self.name(table["name"], where)
        return name, f"{where} ({name!r})"

    def property(self, table: Any, i: int, timeout: float, require: str,
                 models: dict[str, ModelEntry]) -> PropertyEntry:
        name, where = self.header(table, "properties", i)
        self.check_keys(table, _PROPERTY_KEYS, where)
        source = None
        if "template" in table:
            if "spec" in table:
                raise self.fail(where, "give either 'spec' or 'template', not both")
            spec, source = None, self.template(table, where)
        else:
            if "spec" not in table or not isinstance(table["spec"], str):
                raise self.fail(where, "missing key 'spec': a .vnnlib or Python spec file (or 'template')")
            extra = sorted(k for k in table if k not in _SPEC_PROPERTY_KEYS)
            if extra:
                raise self.fail(where, f"key {extra[0]!r} belongs to a template; this property has a spec file")
            spec = self.existing(table["spec"], where, "spec")
        return PropertyEntry(name, spec, self.model_names(table, where, models),
                             self.seconds(table.get("timeout", timeout), where, "timeout"),
                             self.requirement(table.get("require", require), where),
                             self.text(table.get("description", ""), where, "description"), source)

    def template(self, table: dict[str, Any], where: str) -> str:
        """The Python spec text of a ``template = ...`` table, its parameters validated by the template's builder."""
        kind = table["template"]
        if kind not in TEMPLATE_PARAMETERS:
            raise self.fail(where, f"key 'template': expected one of {', '.join(TEMPLATE_PARAMETERS)}, "
                                   f"got {_shown(kind)}")
        allowed = set(TEMPLATE_PARAMETERS[kind]) | _REGION_KEYS | set(_SPEC_PROPERTY_KEYS) | {"template"}
        extra = sorted(k for k in table if k not in allowed and k != "spec")
        if extra:
            raise self.fail(where, f"key {extra[0]!r} is not a parameter of template {kind!r} (it takes "
                                   f"{', '.join(TEMPLATE_PARAMETERS[kind])})")
        if "lower" in table or "upper" in table:
            lower, upper = table.get("lower"), table.get("upper")
            if not (_numbers(lower) and _numbers(upper) and len(lower) == len(upper)):
                raise self.fail(where, "keys 'lower' and 'upper': expected two lists of numbers of one length")
            region = f"box({[float(v) for v in lower]!r}, {[float(v) for v in upper]!r})"
        elif "center" in table:
            center, eps, clip = table.get("center"), table.get("eps"), table.get("clip")
            if not _numbers(center) or not _number(eps):
                raise self.fail(where, "keys 'center' and 'eps': expected a list of numbers and a number")
            if clip is not None and not (_numbers(clip) and len(clip) == 2):
                raise self.fail(where, "key 'clip': expected [low, high]")
            region = f"linf_ball({[float(v) for v in center]!r}, {float(eps)!r}" + (
                f", clip=({float(clip[0])!r}, {float(clip[1])!r}))" if clip is not None else ")")
        else:
            raise self.fail(where, "a template needs a region: 'lower' and 'upper', or 'center' and 'eps'")
        params = {}
        for key in TEMPLATE_PARAMETERS[kind]:
            if key not in table:
                continue
            value = table[key]
            if key == "other":
                if not isinstance(value, str):
                    raise self.fail(where, "key 'other': expected the path of a model file")
                value = str(self.existing(value, where, "other model").resolve())
            params[_BUILDER_NAMES.get(key, key)] = value
        source = (f"from verify.spec import box, linf_ball, {kind}\n\n# written by verify gate from {self.path.name}, "
                  f"{where}\nPROPERTY = {kind}({region}"
                  + "".join(f", {k}={v!r}" for k, v in params.items()) + ")\n")
        try:  # the builder validates every parameter (a one-line SpecError)
            namespace: dict[str, Any] = {}
            exec(compile(source, f"{self.path}: {where}", "exec"), namespace)  # noqa: S102 (our own text)
        except SpecError as exc:
            raise self.fail(where, str(exc)) from None
        except TypeError as exc:
            raise self.fail(where, f"template {kind!r}: {exc}") from None
        return source

    def family(self, table: Any, i: int, timeout: float, require: str,
               models: dict[str, ModelEntry]) -> FamilyEntry:
        name, where = self.header(table, "families", i)
        self.check_keys(table, _FAMILY_KEYS, where)
        if "data" not in table or not isinstance(table["data"], str):
            raise self.fail(where, "missing key 'data': a .npy or .csv file, one row per input plus its label")
        data = self.existing(table["data"], where, "data", max_data_bytes())
        if data.suffix.lower() not in (".npy", ".csv"):
            raise self.fail(where, f"key 'data': expected a .npy or .csv file, got {data.name}")
        eps = table.get("eps")
        if not _number(eps) or not 0 <= eps <= MAX_EPS:
            raise self.fail(where, f"key 'eps': expected a number >= 0 and at most {MAX_EPS:g}, got {_shown(eps)}")
        clip = table.get("clip")
        if clip is not None:
            if not (isinstance(clip, list) and len(clip) == 2 and all(_number(v) and abs(v) <= MAX_EPS for v in clip)
                    and clip[0] <= clip[1]):
                raise self.fail(where, f"key 'clip': expected [low, high], finite numbers with low <= high, "
                                       f"got {_shown(clip)}")
            clip = (float(clip[0]), float(clip[1]))
        label_column = table.get("label-column", -1)
        if not isinstance(label_column, int) or isinstance(label_column, bool) or abs(label_column) > MAX_ROWS:
            raise self.fail(where, f"key 'label-column': expected an integer column index, got {_shown(label_column)}")
        limit = table.get("limit")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_ROWS):
            raise self.fail(where, f"key 'limit': expected a whole number 1..{MAX_ROWS}, got {_shown(limit)}")
        rate = table.get("min-verified-rate")
        if rate is not None and (not _number(rate) or not 0 <= rate <= 1):
            raise self.fail(where, f"key 'min-verified-rate': expected a fraction in [0, 1], got {_shown(rate)}")
        return FamilyEntry(name, data, float(eps), self.model_names(table, where, models),
                           self.seconds(table.get("timeout", timeout), where, "timeout"),
                           self.requirement(table.get("require", require), where), clip, label_column, limit,
                           None if rate is None else float(rate),
                           self.text(table.get("description", ""), where, "description"))


#: Largest eps and clip bound accepted (beyond it a ball's bounds are not finite floats).
MAX_EPS = 1e300
#: Most rows (and columns) a family's ``limit`` and ``label-column`` may name.
MAX_ROWS = 2**40


def _numbers(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(_number(v) for v in value)


def _finite(value: int | float) -> bool:
    """Whether a TOML number is finite (an int of any size counts when float64 holds it)."""
    return -1e308 < value < 1e308 if isinstance(value, int) else math.isfinite(value)


def _number(value: Any) -> bool:
    """A finite TOML number (int or float, not a boolean)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and _finite(value)


def _shown(value: Any) -> str:
    """A TOML value for a one-line message (long ones cut)."""
    text = repr(value)
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:40] + f"...({len(text)} characters)"


def max_data_bytes() -> int:
    """The size limit of a family's data file: ``VERIFY_MAX_DATA_BYTES`` or 2 GiB."""
    text = os.environ.get(MAX_DATA_BYTES_ENV, "").strip()
    try:
        value = int(text.replace("_", "")) if text and len(text) <= 30 else (DEFAULT_MAX_DATA_BYTES if not text else 0)
    except ValueError:
        value = 0
    if value <= 0:
        raise ManifestError(f"{MAX_DATA_BYTES_ENV}={text[:40]!r} is not a positive whole number of bytes")
    return value


def read_family_rows(family: FamilyEntry, manifest_path: Path, n_inputs: int,
                     n_outputs: int) -> tuple[np.ndarray, np.ndarray]:
    """The family's centres ``[N, n_inputs]`` (float64) and labels ``[N]`` (int), validated
    against the model's sizes."""
    where = f"{manifest_path}: family {family.name!r}"
    table = _read_table(family.data, where)
    if family.limit is not None:
        table = table[:family.limit]
    n_rows, n_cols = table.shape
    if n_rows == 0:
        raise ManifestError(f"{where}: {family.data} has no rows")
    if n_cols != n_inputs + 1:
        raise ManifestError(f"{where}: {family.data} has {n_cols} columns; expected {n_inputs + 1} "
                            f"(the model's {n_inputs} inputs plus the label column)")
    col = family.label_column
    if not -n_cols <= col < n_cols:
        raise ManifestError(f"{where}: key 'label-column' = {col} is outside the {n_cols} columns")
    col %= n_cols
    labels = table[:, col]
    centres = np.delete(table, col, axis=1)
    if not np.all(np.isfinite(table)):
        bad = int(np.nonzero(~np.isfinite(table).all(axis=1))[0][0])
        raise ManifestError(f"{where}: row {bad} of {family.data} has a NaN or infinite value")
    ints = np.round(labels)
    bad = np.nonzero((ints != labels) | (ints < 0) | (ints >= n_outputs))[0]
    if bad.size:
        raise ManifestError(f"{where}: row {int(bad[0])} of {family.data} has label {float(labels[bad[0]]):g}; "
                            f"expected a class index 0..{n_outputs - 1} in column {col} (set 'label-column' if "
                            "the label is elsewhere)")
    return centres.astype(np.float64), ints.astype(np.int64)


def _read_table(path: Path, where: str) -> np.ndarray:
    """The data file as a 2-D float64 table: a regular file within the size limit, read
    without blocking; a .npy file of a real numeric dtype (no pickles), or CSV in UTF-8."""
    try:
        data = _read_file(path, max_data_bytes(), "data file")
    except InputFileError as exc:
        raise ManifestError(f"{where}: {exc}") from None
    if path.suffix.lower() == ".npy":
        try:
            table = np.load(io.BytesIO(data), allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:  # numpy's format errors, one line each
            raise ManifestError(f"{where}: cannot read {path} as .npy: {one_line(exc, 200)}") from None
        if not isinstance(table, np.ndarray):
            raise ManifestError(f"{where}: {path} is not a .npy array file")
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ManifestError(f"{where}: {path} is not UTF-8 text (byte {exc.start})") from None
        table = _read_csv(path, text, where)
    if table.ndim != 2 or not (np.issubdtype(table.dtype, np.integer) or np.issubdtype(table.dtype, np.floating)):
        raise ManifestError(f"{where}: {path} must hold a 2-D numeric table (rows = inputs plus label), "
                            f"got shape {table.shape} of {table.dtype}")
    return table.astype(np.float64)


def _read_csv(path: Path, text: str, where: str) -> np.ndarray:
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if lines and not _numeric_row(lines[0]):
        lines = lines[1:]  # a header
    rows = []
    for n, line in enumerate(lines, 1):
        cells = [c.strip() for c in line.split(",")]
        try:
            rows.append([float(c) for c in cells])
        except ValueError:
            raise ManifestError(f"{where}: {path}: data line {n} is not all numbers: {line[:80]!r}") from None
        if len(rows[-1]) != len(rows[0]):
            raise ManifestError(f"{where}: {path}: data line {n} has {len(rows[-1])} values, the first has "
                                f"{len(rows[0])}")
    return np.array(rows, dtype=np.float64).reshape(len(rows), -1 if rows else 0)


def _numeric_row(line: str) -> bool:
    try:
        [float(c) for c in line.split(",")]
    except ValueError:
        return False
    return True
