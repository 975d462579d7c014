"""``verify graph MODEL [--spec SPEC]``: the compressed modular graph of a model on a property's region."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from verify.compress import compress_model
from verify.errors import InputFileError, SpecError
from verify.model.network import load_model
from verify.modules.draw import write_all
from verify.spec import load_spec


def run(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    prop = None
    if args.spec:
        prop = load_spec(args.spec, n_inputs=model.n_inputs, n_outputs=model.n_outputs, model_name=str(args.model))
        prop.check_fits(model.n_inputs, model.n_outputs, args.model)
        if args.case > len(prop.cases):
            raise SpecError(f"{args.spec} has {len(prop.cases)} case(s); --case {args.case} does not exist")
    result = compress_model(model, prop, case=args.case - 1, keep_chain=not args.skips,
                            max_unstable=args.max_unstable, bounds=args.bounds)
    info: dict[str, Any] = {"model": str(args.model), "spec": args.spec,
                            "case": args.case if prop else None, "n_cases": len(prop.cases) if prop else None,
                            "n_inputs": model.n_inputs, "n_outputs": model.n_outputs,
                            "max_unstable": args.max_unstable, "keep_chain": not args.skips,
                            "bounds": args.bounds if prop else None}
    files: list[str] = []
    if args.out:
        title = model.name + (f" on {Path(args.spec).name} (case {args.case})" if prop else " (no region)")
        try:
            paths = write_all(result.graph, result.modules, args.out, title, args.max_unstable,
                              extra={"summary": {**info, **result.to_json()}})
        except OSError as exc:
            raise InputFileError(f"cannot write into {args.out}: {exc.strerror or exc}") from None
        files = [str(p) for p in paths]
    if args.json:
        print(json.dumps({**info, **result.to_json(), "files": files}))
    else:
        print(format_graph(result, info, files))
    return 0


def format_graph(result: Any, info: dict[str, Any], files: list[str]) -> str:
    """The text report: figures before/after, the passes, the modules."""
    def opt(v: int | None) -> str:
        return "-" if v is None else str(v)

    lines = [f"model   {info['model']}  ({info['n_inputs']} inputs, {info['n_outputs']} outputs)"]
    if info["spec"]:
        rows = result.graph.graph.get("n_outputs") if result.graph.graph.get("sliced") else None
        lines.append(f"region  {info['spec']}, case {info['case']} of {info['n_cases']}"
                     + (f" ({rows} property row(s))" if rows is not None else ""))
    else:
        lines.append("region  none (no --spec): structural passes only, every ReLU counts as unstable")
    lines += ["", f"  {'':18}{'before':>9}{'after':>9}",
              f"  {'neurons':18}{result.neurons_before:>9}{result.neurons_after:>9}",
              f"  {'non-zero weights':18}{result.edges_before:>9}{result.edges_after:>9}",
              f"  {'ReLUs':18}{result.relus_before:>9}{result.relus_after:>9}",
              f"  {'unstable ReLUs':18}{opt(result.unstable_before):>9}{opt(result.unstable_after):>9}",
              f"  ReLUs kept: {100 * result.relus_kept:.1f}%   error bound: {result.error_bound:g}"
              f"   ({result.seconds:.3f} s)", "", "passes"]
    for rep in result.reports:
        lines.append(f"  {rep.name:20} {rep.detail}")
    lines += ["", f"modules: {result.n_modules} (at most {info['max_unstable']} unstable ReLUs each where "
                  "the structure allows)",
              f"  {'name':6}{'stage':>6}{'neurons':>9}{'unstable':>10}  reads -> read by others"]
    for m in result.modules:
        reads = ", ".join(f"{k}:{len(v)}" for k, v in m.inputs.items()) or "-"
        outs = ", ".join(f"{k}:{len(v)}" for k, v in m.outputs.items()) or "-"
        lines.append(f"  {m.name:6}{m.stage:>6}{m.n_neurons:>9}{m.n_unstable:>10}  {reads} -> {outs}")
    if files:
        lines += ["", "wrote " + ", ".join(files)]
    return "\n".join(lines)
