#!/usr/bin/env bash
# VNN-COMP interface: prepare_instance.sh VERSION CATEGORY ONNX VNNLIB
# Called before each instance, untimed. Checks that verify is installed and that the
# model and spec can be read (a bad file is an input error, reported now); exits 0 when
# the instance can be run.
set -uo pipefail
if [ "$#" -ne 4 ]; then
    echo "usage: prepare_instance.sh VERSION CATEGORY ONNX VNNLIB" >&2
    exit 2
fi
VERSION=$1; CATEGORY=$2; ONNX=$3; VNNLIB=$4
HERE=$(cd "$(dirname "$0")" && pwd)
VERIFY="${VERIFY:-$HERE/../.venv/bin/verify}"
if [ "$VERSION" != "v1" ]; then
    echo "prepare_instance.sh: expected version v1, got $VERSION" >&2
    exit 1
fi
if [ ! -x "$VERIFY" ]; then
    echo "prepare_instance.sh: $VERIFY not found: run 'make demo' (or 'make install') in $HERE/.. first" >&2
    exit 1
fi
for f in "$ONNX" "$VNNLIB"; do
    if [ ! -r "$f" ]; then
        echo "prepare_instance.sh: cannot read $f" >&2
        exit 1
    fi
done
echo "prepare_instance.sh: $CATEGORY ready ($ONNX, $VNNLIB)"
exit 0
