"""Relational and templated properties (issue 19): :func:`check_template` decides a
:class:`~verify.spec.templates.Template` on a model.

* ``output_range``: a plain property, checked by :func:`verify.check.check`;
* ``monotone``, ``fair``, ``lipschitz`` (two copies of one network): bounds on the
  derivative over sub-boxes of the region (:mod:`verify.relational.derivative`);
* ``equivalent`` (two networks): a product network (:mod:`verify.relational.equivalence`).

Counterexamples are pairs, replayed on the original model(s) (:mod:`verify.relational.pairs`).
The result's ``details["template"]`` names the template and its parameters.
"""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path

from verify.certcheck import check_certificate
from verify.certificate.build import jacobian_certificate
from verify.check import FALSIFIED, UNKNOWN, VERIFIED, CheckOptions, CheckResult, check
from verify.errors import SpecError
from verify.model.network import Model, load_model
from verify.relational.boxes import answer
from verify.relational.derivative import prove_derivative
from verify.relational.equivalence import check_equivalent
from verify.spec.templates import Equivalent, Fair, Lipschitz, Monotone, OutputRange, Template

__all__ = ["check_template", "other_model_path"]


def other_model_path(template: Equivalent, spec_path: str | Path | None) -> Path:
    """``other`` of an ``equivalent`` template: absolute, or relative to the spec file's folder."""
    other = Path(template.other)
    if not other.is_absolute() and spec_path is not None:
        other = Path(spec_path).parent / other
    return other


def check_template(model: Model, template: Template, options: CheckOptions | None = None,
                   spec_path: str | Path | None = None) -> CheckResult:
    """Decide ``template`` on ``model``: verified, falsified (a replayed pair) or unknown."""
    options = options or CheckOptions()
    start = time.monotonic()
    template.check_fits(model.n_inputs, model.n_outputs, model.name)
    spec = str(spec_path or template.KIND)
    if isinstance(template, OutputRange):
        prop = template.to_property(model.n_outputs)
        prop.source = spec
        result = check(model, prop, options)
    elif isinstance(template, Equivalent):
        other = load_model(other_model_path(template, spec_path))
        result, tree = check_equivalent(model, other, template, options)
        result.spec = spec
        result.model = str(model.path or model.name)
        if tree is not None:
            cert, rejected = _certify(model, template, tree, options, spec, start, other)
            result.certificate = cert
            if rejected:
                result.verdict, result.reason, result.certificate = UNKNOWN, f"certificate rejected: {rejected}", None
            elif cert is None:
                result.details["certificate"] = "not available: the spec is not a file"
        elif result.verdict == VERIFIED:
            result.details["certificate"] = "not written for product-network proofs yet (issue 19)"
    elif isinstance(template, (Monotone, Fair, Lipschitz)):
        result = _derivative(model, template, options, spec, start)
    else:
        raise SpecError(f"{spec}: unknown template {type(template).__name__}")
    result.details["template"] = template.to_json()
    result.seconds = time.monotonic() - start
    return result


def _derivative(model: Model, template: Monotone | Fair | Lipschitz, options: CheckOptions, spec: str,
                start: float) -> CheckResult:
    if model.ir is None:
        raise SpecError(f"{spec}: {template.KIND} needs the model's graph")
    outcome = prove_derivative(template, model, start + options.timeout, options.seed, options.falsify,
                               options.progress)
    details: dict[str, object] = {"refinement": outcome.stats}
    name = {"monotone": "derivative_lower_bound", "fair": "certified_change", "lipschitz": "certified_L"}
    if math.isfinite(outcome.certified):
        details[name[template.KIND]] = outcome.certified
    margin: float | None = None
    if isinstance(template, Monotone):
        margin = outcome.certified
    elif isinstance(template, Fair):
        margin = template.tolerance - outcome.certified
    else:
        margin = template.L - outcome.certified
    certificate = None
    verdict, method, reason = answer(outcome, "derivative-bounds", start + options.timeout,
                                     "bounds too loose (no counterexample pair found)", details)
    if verdict == FALSIFIED:
        margin = None
    if verdict == VERIFIED:
        certificate, rejected = _certify(model, template, outcome.tree, options, spec, start)
        if rejected:
            verdict, reason = UNKNOWN, f"certificate rejected: {rejected}"
    result = CheckResult(verdict, time.monotonic() - start, method,
                         margin if margin is None or math.isfinite(margin) else None, None, reason,
                         model=str(model.path or model.name), spec=spec, details=details)
    result.certificate = certificate if verdict == VERIFIED else None
    if outcome.status == "verified" and certificate is None:
        details["certificate"] = "not available: the spec is not a file"
    return result


def _certify(model: Model, template: Template, tree: object, options: CheckOptions, spec: str,
             start: float, other: Model | None = None) -> tuple[dict | None, str]:
    """The certificate of a verified derivative (or, with ``other``, differential) proof, re-checked by the
    independent checker (ONNX models, with --recheck); (certificate, the checker's message when it rejects it)."""
    path = Path(spec)
    if not path.is_file() or tree is None:
        return None, ""
    cert = jacobian_certificate(model, path.name, hashlib.sha256(path.read_bytes()).hexdigest(), template,
                                tree, other)
    if options.recheck and model.kind == "onnx" and model.path is not None:
        report = check_certificate(model.path, path, cert, deadline=start + options.timeout)
        if report.complete and not report.valid:
            return None, report.message
    return cert, ""
