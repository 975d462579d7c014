"""The arguments of every ``verify`` command (argparse).

:func:`verify.cli.main` builds the parser of every command in every process, then imports
the module of the one command that runs (:mod:`verify.commands`); so this module stays
light (a fully cached ``verify gate`` imports no torch, onnx or networkx), and the
command modules import what they run at their top.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from verify.errors import EXIT_INPUT_ERROR
from verify.falsify import METHODS
from verify.runtime import MAX_SECONDS

#: Sub-commands, one module each in verify/commands/ (with run(args)); their arguments are here.
COMMANDS = ("check", "certcheck", "falsify", "graph", "gate", "run")


class Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in one line with exit code 2."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        self.exit(EXIT_INPUT_ERROR, f"verify: error: {message} (see '{self.prog} --help')\n")


def positive_seconds(text: str) -> float:
    """A timeout or budget: a finite number of seconds in (0, :data:`MAX_SECONDS`]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r:.60}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text:.60}")
    if not value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds, at most {MAX_SECONDS:g}, got {text:.60}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text) if len(text) <= 20 else None
    except ValueError:
        value = None
    if value is None:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r:.60}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    if value > 1_000_000:
        raise argparse.ArgumentTypeError(f"must be at most 1000000, got {text}")
    return value


def common_options(p: argparse.ArgumentParser) -> None:
    """Options every sub-command accepts."""
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks of errors")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="verify", description="Behavioural guarantees for neural networks.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)
    for name in COMMANDS:
        ADD[name](sub)
    return parser


# verify check
CHECK_DESCRIPTION = """\
Decide whether each property holds on the model: verified (with a certificate the
independent checker re-derives), falsified (with a counterexample replayed on the
original model) or unknown (timeout, or bounds too loose).

Each SPEC is a spec file (.vnnlib, VNN-LIB 1.0 or 2.0, or a Python file defining
PROPERTY), a directory (every *.vnnlib and *.py file directly in it, sorted by name) or
a glob pattern such as 'specs/*.vnnlib' (expanded by verify when the shell did not,
e.g. when quoted; '**' matches subdirectories).  With one spec file the output is that
spec's report.  With several specs, a directory or a pattern the model is loaded once,
the specs are checked one after the other, each with its own --timeout, and a summary
table follows (one row per spec: spec, verdict, method, margin, seconds; then the
totals); a spec that cannot be read, or whose input/output counts do not fit the model,
is an error row and the others are still checked."""


CHECK_EPILOG = """\
examples (run from the repository root):
  # exit 0: verified; the certificate is written to cert.json (see `verify certcheck`)
  verify check examples/tiny/classifier.onnx specs/tiny_robust_class0.vnnlib --certificate cert.json
  # exit 1: falsified; one JSON object, with the replayed counterexample
  verify check examples/tiny/classifier.onnx specs/tiny_robust_class0_wide.vnnlib --json
  # exit 1: every spec in specs/ (one of them is falsified), at most 30 s each, a summary table
  verify check examples/tiny/classifier.onnx specs/ --timeout 30
  # exit 1: a quoted pattern, expanded by verify; one JSON object with "results" and "summary"
  verify check examples/tiny/classifier.onnx 'specs/*.vnnlib' --json --quiet
  # exit 0: two specs that hold, named one by one
  verify check examples/tiny/classifier.onnx specs/tiny_robust_class0.vnnlib specs/tiny_output_range.py

exit codes:
  0  verified (several specs: all of them verified)
  1  falsified: a counterexample, replayed on the original model (several: any falsified)
  2  usage or input error, one line on stderr (several: any spec with an input error,
     shown in its row; the other specs are still checked and reported)
  3  unknown or timeout (several: any unknown, none falsified)
  4  internal error (a bug in verify: please report it)
  With several specs the first of 4, 2, 1, 3 that applies is the exit code, else 0.

--witness and --certificate name one file: they take exactly one spec file (with several
specs they are a usage error, exit 2)."""


def add_check(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="check properties on a model", description=CHECK_DESCRIPTION, epilog=CHECK_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="ONNX model file")
    p.add_argument("spec", metavar="SPEC", nargs="+",
                   help="property: a .vnnlib (1.0 or 2.0) or Python spec file, a directory of them "
                        "(*.vnnlib, *.py directly in it) or a glob pattern")
    p.add_argument("--timeout", type=positive_seconds, default=60.0, metavar="S",
                   help="seconds per spec (default 60); the first spec's clock starts with the process, "
                        "model loading included")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (several specs: {\"results\": [...], \"summary\": {...}})")
    p.add_argument("--witness", metavar="FILE", help="write a counterexample in VNN-COMP format (one spec only)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the searches (default 0)")
    p.add_argument("--certificate", metavar="FILE",
                   help="write the certificate of a verified answer (JSON; one spec only)")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="spread input-split branch and bound over the Ray cluster at ADDRESS (HOST:PORT, as "
                        "`ray start --head` prints, or 'local'): docs/cluster.md")
    p.add_argument("--no-falsify", action="store_true", help="do not search for counterexamples")
    p.add_argument("--no-refine", action="store_true", help="stop after the incomplete pass (no branch and bound)")
    p.add_argument("--no-compress", action="store_true",
                   help="branch and bound on the original network instead of the compressed graph")
    p.add_argument("--no-modular", action="store_true", help="skip module composition before ReLU splitting")
    p.add_argument("--no-recheck", action="store_true",
                   help="do not re-check the certificate with the independent checker before answering")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    common_options(p)


# verify certcheck
CERTCHECK_EPILOG = """exit codes:
  0  valid: every claim re-checked
  1  invalid: a well-formed certificate whose claims do not hold (the first failing claim is named)
  2  input error: a model, spec or certificate path that is not a regular file, or a certificate
     file that is not a well-formed certificate (not JSON, too deep, a field of the wrong type)

example:
  verify certcheck examples/tiny/classifier.onnx specs/tiny_robust_class0.vnnlib cert.json"""


def add_certcheck(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("certcheck", help="re-check a certificate against the model and spec",
                       description="Re-derive every claim of a certificate from the model file (rigorous float64, "
                                   "no auto_LiRPA): exit 0 valid, 1 invalid, 2 input error.",
                       epilog=CERTCHECK_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="ONNX model file the certificate is about")
    p.add_argument("spec", help="the property (.vnnlib or Python spec)")
    p.add_argument("certificate", help="certificate JSON written by verify check --certificate")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    common_options(p)


# verify falsify
def _methods(text: str) -> tuple[str, ...]:
    names = tuple(m.strip() for m in text.split(",") if m.strip())
    bad = [m for m in names if m not in METHODS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"expected a comma-separated subset of {','.join(METHODS)}, got {text!r}")
    return names


def add_falsify(sub: argparse._SubParsersAction) -> None:
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


# verify graph
def add_graph(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("graph", help="show the compressed modular graph of a model",
                       description="Extract the model's graph, compress it soundly on the spec's input region "
                                   "(the first case unless --case), split it into modules, print the figures "
                                   "before and after, and with --out write a picture, DOT and JSON.")
    p.add_argument("model", help="ONNX model file")
    p.add_argument("--spec", help="property (.vnnlib or Python spec): compress on its region and slice to its rows")
    p.add_argument("--case", type=positive_int, default=1, help="which case (input box) of the spec, from 1 "
                                                                 "(default 1)")
    p.add_argument("--max-unstable", type=positive_int, default=12, metavar="N",
                   help="module size rule: at most N unstable ReLUs per module where possible (default 12)")
    p.add_argument("--skips", action="store_true",
                   help="fold every active ReLU, even where that adds skip connections (default: keep chains)")
    p.add_argument("--bounds", choices=("crown", "alpha", "ibp"), default="crown",
                   help="pre-activation bounds on the region: crown (default), alpha (alpha-CROWN: tighter, "
                        "slower) or ibp")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out", metavar="DIR", help="write modules.svg, modules.png, graph.dot and graph.json into DIR")
    common_options(p)


# verify gate
def add_gate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gate", help="check every property of a manifest (release gate for CI)",
                       description="Run every property of the manifest (verify.toml, or [tool.verify] in "
                                   "pyproject.toml) and exit 0 only if every requirement holds: 1 when a property "
                                   "is falsified, a requirement fails or a property regressed against --baseline, "
                                   "3 when the only failures are unknown answers, 2 on input errors.")
    p.add_argument("--manifest", metavar="FILE", type=Path,
                   help="verify.toml or pyproject.toml (default: ./verify.toml, else ./pyproject.toml)")
    p.add_argument("--baseline", metavar="DIR", type=Path,
                   help="the --report folder (or report.json) of the last release: a property verified there "
                        "and not now fails the gate")
    p.add_argument("--report", metavar="DIR", type=Path,
                   help="write report.json, junit.xml, report.md, report.html and the certificates into DIR")
    p.add_argument("--junit", metavar="FILE", type=Path, help="write JUnit XML to FILE")
    p.add_argument("--jobs", metavar="J", type=positive_int, default=1,
                   help="check J properties at a time in worker processes (default 1)")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="check the properties as tasks on the Ray cluster at ADDRESS (HOST:PORT, as `ray start "
                        "--head` prints; 'local' starts Ray here with --jobs CPUs, else all): docs/cluster.md")
    p.add_argument("--no-cache", action="store_true", help="neither read nor store cached answers")
    p.add_argument("--cache-dir", metavar="DIR", type=Path,
                   help="cache folder (default: .verify-cache/gate/ next to the manifest)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    common_options(p)


# verify run
RUN_EPILOG = """\
INSTANCES.csv has one instance per line, `onnx,vnnlib[,timeout]`, paths relative to the
file's folder (the VNN-COMP layout); an `expected.csv` beside it (columns index,expected:
sat/unsat) marks wrong answers. Each worker process imports verify once; an instance that
overruns its timeout by more than 10 s has its worker killed and replaced (only that one).

exit codes: 0 every instance answered (verified or falsified) and none wrong,
            1 an answer contradicts expected.csv, 3 some instance unknown or failed,
            2 input error.

examples:
  verify run ../shared/benchmarks/acasxu/instances.csv --jobs 2 --out acasxu.csv
  verify run ../shared/benchmarks/acasxu/subset34.csv --jobs 2 --limit 4
"""


def add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="check the instances of a CSV file (batch mode, like benchmarks/run_family.py)",
                       description="Check every instance of INSTANCES.csv and print one row per instance "
                                   "(verdict, expected, seconds) and the totals.",
                       epilog=RUN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("instances", type=Path, help="instances.csv (or the folder that holds it)")
    p.add_argument("--jobs", type=positive_int, default=1, help="worker processes (default 1)")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="run the instances as tasks on the Ray cluster at ADDRESS (HOST:PORT, or 'local'): "
                        "docs/cluster.md")
    p.add_argument("--limit", type=positive_int, metavar="N", help="only the first N instances")
    p.add_argument("--timeout", type=positive_seconds, help="seconds per instance (default: each instance's own)")
    p.add_argument("--out", type=Path, metavar="CSV", help="write the table as CSV")
    p.add_argument("--certificates", type=Path, metavar="DIR", help="write the certificates of verified instances")
    p.add_argument("--seed", type=int, default=0, help="random seed of the searches (default 0)")
    p.add_argument("--no-recheck", action="store_true", help="do not re-check certificates before answering")
    p.add_argument("--no-compress", action="store_true", help="branch and bound on the uncompressed network")
    p.add_argument("--no-modular", action="store_true", help="skip module composition before ReLU splitting")
    common_options(p)


ADD = {"check": add_check, "certcheck": add_certcheck, "falsify": add_falsify, "graph": add_graph, "gate": add_gate,
       "run": add_run}
