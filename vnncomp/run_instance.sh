#!/usr/bin/env bash
# VNN-COMP interface: run_instance.sh VERSION CATEGORY ONNX VNNLIB RESULTS_FILE TIMEOUT
# Runs `verify check` on one instance and writes RESULTS_FILE in the competition's
# format: `unsat` (the property holds: verified), `sat` followed by the counterexample
# `((X_0 v) ... (Y_0 v))` (replayed on the model with onnxruntime), `timeout`, `unknown`
# or `error`. (VNN-LIB describes the unsafe set, hence unsat = verified.)
set -uo pipefail
if [ "$#" -ne 6 ]; then
    echo "usage: run_instance.sh VERSION CATEGORY ONNX VNNLIB RESULTS_FILE TIMEOUT" >&2
    exit 2
fi
VERSION=$1; CATEGORY=$2; ONNX=$3; VNNLIB=$4; RESULTS=$5; TIMEOUT=$6
HERE=$(cd "$(dirname "$0")" && pwd)
VERIFY="${VERIFY:-$HERE/../.venv/bin/verify}"
if [ "$VERSION" != "v1" ]; then
    echo "run_instance.sh: expected version v1, got $VERSION" >&2
    echo "error" > "$RESULTS"
    exit 0
fi
WITNESS=$(mktemp "${TMPDIR:-/tmp}/verify-witness.XXXXXX")
OUTPUT=$(mktemp "${TMPDIR:-/tmp}/verify-output.XXXXXX")
trap 'rm -f "$WITNESS" "$OUTPUT"' EXIT
"$VERIFY" check "$ONNX" "$VNNLIB" --timeout "$TIMEOUT" --witness "$WITNESS" --json --quiet > "$OUTPUT"
CODE=$?
case $CODE in
    0) echo "unsat" > "$RESULTS" ;;
    1) { echo "sat"; cat "$WITNESS"; } > "$RESULTS" ;;
    3) if grep -q '"reason": "timeout"' "$OUTPUT"; then echo "timeout" > "$RESULTS"; else echo "unknown" > "$RESULTS"; fi ;;
    *) echo "error" > "$RESULTS" ;;
esac
echo "run_instance.sh: $CATEGORY $(basename "$ONNX") $(basename "$VNNLIB"): $(head -n 1 "$RESULTS") (verify exit $CODE)"
exit 0
