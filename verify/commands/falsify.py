"""``verify falsify MODEL SPEC``: hunt for a counterexample (exit 1 with the witness, 3 when none is found)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from verify.errors import EXIT_FALSIFIED, EXIT_UNKNOWN
from verify.falsify.base import Budget, Counterexample
from verify.falsify.combined import default_falsifier
from verify.falsify.database import database_dir
from verify.falsify.region import Region
from verify.model.network import load_model
from verify.runtime import run_with_watchdog, write_text
from verify.spec import load_spec

#: Seconds past --budget the watchdog waits for the search to hand back (it watches the deadline itself).
GRACE = 1.0


def run(args: argparse.Namespace) -> int:
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
