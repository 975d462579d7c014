"""``verify falsify MODEL SPEC``: hunt for a counterexample (exit 1 with the witness, 3 when none is found)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from verify.cli import common_options, positive_seconds, run_with_watchdog, write_text
from verify.errors import EXIT_FALSIFIED, EXIT_UNKNOWN

#: Seconds past --budget the watchdog waits for the search to hand back (it watches the deadline itself).
GRACE = 1.0


def _methods(text: str) -> tuple[str, ...]:
    from verify.falsify.combined import METHODS

    names = tuple(m.strip() for m in text.split(",") if m.strip())
    bad = [m for m in names if m not in METHODS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"expected a comma-separated subset of {','.join(METHODS)}, got {text!r}")
    return names


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "falsify", help="search for a counterexample (bound corners, hypothesis, PGD)",
        description="Search the property's region for an input whose output is unsafe: exit 1 with the "
                    "witness when one is found (replayed on the original model), 3 when none is found within "
                    "the budget, 2 input error, 4 internal error. Found witnesses are kept in the example "
                    "database ($VERIFY_EXAMPLES_DIR, default .verify-cache/examples) and tried first next time.")
    p.add_argument("model", help="ONNX model file")
    p.add_argument("spec", help="property: .vnnlib (1.0 or 2.0) or a Python spec file")
    p.add_argument("--budget", type=positive_seconds, default=10.0, metavar="S", help="seconds to search (default 10)")
    p.add_argument("--seed", type=int, default=0, help="random seed; a run is deterministic for a seed (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--witness", metavar="FILE", help="write the counterexample in VNN-COMP format")
    p.add_argument("--methods", type=_methods, default=("corners", "hypothesis", "pgd"), metavar="LIST",
                   help="comma-separated: corners (descents from the corners alpha-CROWN's bounds point at; "
                        "networks of affine maps and ReLUs only), hypothesis, pgd (default: all; corners "
                        "once, then hypothesis and pgd in turns)")
    p.add_argument("--no-shrink", action="store_true", help="report the witness as found, without shrinking it")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="torch CPU threads (default 1: the searches run small batches, and extra threads only "
                        "help for large models on idle cores)")
    db = p.add_mutually_exclusive_group()
    db.add_argument("--database", metavar="DIR", help="example database directory (default: $VERIFY_EXAMPLES_DIR "
                                                      "or .verify-cache/examples)")
    db.add_argument("--no-database", action="store_true", help="neither read nor write the example database")
    common_options(p)


def run(args: argparse.Namespace) -> int:
    from verify.falsify.base import Budget, Counterexample
    from verify.falsify.combined import default_falsifier
    from verify.falsify.database import database_dir
    from verify.falsify.region import Region
    from verify.model.network import load_model
    from verify.spec import load_spec

    start = time.monotonic()
    model = load_model(args.model)
    prop = load_spec(args.spec, n_inputs=model.n_inputs, n_outputs=model.n_outputs, model_name=str(args.model),
                     timeout=max(0.01, args.budget - (time.monotonic() - start)))
    prop.check_fits(model.n_inputs, model.n_outputs, args.model)
    database: Any = None if args.no_database else (args.database or "default")
    falsifier = default_falsifier(database=database, methods=args.methods,
                                  shrink_seconds=0.0 if args.no_shrink else 2.0, threads=max(1, args.threads))
    search_start = time.monotonic()
    budget = Budget(search_start + max(0.01, args.budget - (search_start - start)))

    def on_timeout() -> None:
        budget.cancelled[0] = True
        return None

    cex: Counterexample | None = run_with_watchdog(lambda: falsifier.search(model, prop, budget, args.seed),
                                                   budget.left() + GRACE, on_timeout)
    seconds = time.monotonic() - start
    db_path = None if args.no_database else str(args.database or database_dir() or "") or None
    out: dict[str, Any] = {
        "result": "falsified" if cex is not None else "not_found",
        "model": str(args.model), "spec": str(args.spec), "seconds": round(seconds, 4),
        "budget": args.budget, "seed": args.seed, "methods": list(args.methods), "database": db_path,
        "candidates": falsifier.stats.candidates, "rejected_by_replay": falsifier.stats.rejected,
        "examples": falsifier.stats.examples,
    }
    if cex is not None:
        region = Region.of(prop.cases[cex.case_index])
        out["time_to_counterexample"] = (None if cex.found_at is None
                                         else round(max(0.0, cex.found_at - search_start), 4))
        out["inputs_away_from_centre"] = int(region.away(cex.x).sum())
        out["counterexample"] = cex.to_json()
        if args.witness:
            write_text(args.witness, cex.witness() + "\n")
    if args.json:
        print(json.dumps(out))
    else:
        print(_text(out, cex))
    sys.stdout.flush()
    code = EXIT_FALSIFIED if cex is not None else EXIT_UNKNOWN
    if budget.cancelled[0]:
        sys.stderr.flush()
        os._exit(code)  # do not wait for an abandoned search thread
    return code


def _text(out: dict[str, Any], cex: Any) -> str:
    if cex is None:
        return (f"NOT FOUND  {out['spec']} on {out['model']}\n"
                f"  no counterexample within {out['budget']:g} s ({', '.join(out['methods'])}, seed {out['seed']}); "
                f"{out['examples']} inputs tried, {out['rejected_by_replay']} candidates rejected by replay")
    found = "the example database" if cex.from_database else f"{cex.method}"
    when = out.get("time_to_counterexample")
    lines = [f"FALSIFIED  {out['spec']} on {out['model']}",
             f"  found by {found}" + ("" if when is None else f" after {when:.2f} s") + f" (seed {out['seed']}); "
             f"case {cex.case_index}; {out['inputs_away_from_centre']} of {len(cex.x)} inputs away from the "
             "centre of the region",
             "  counterexample (replayed on the original model):",
             "  " + cex.witness().replace("\n", "\n  ")]
    if cex.raw_x is not None:
        lines.append("  as first found, before shrinking: X = [" + ", ".join(f"{float(v):.9g}" for v in cex.raw_x)
                     + "]")
    return "\n".join(lines)
