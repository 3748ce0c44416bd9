#!/bin/sh
# Builder step of the Dockerfile: shipper and every runtime dependency as wheels in WHEEL_DIR.
# Only binary wheels of dependencies are accepted, so the final image needs no compiler.
# The test suite runs this same script (tests/k8s/test_image.py).
set -eu
src="${1:?usage: build-wheels.sh SOURCE_DIR WHEEL_DIR}"
out="${2:?usage: build-wheels.sh SOURCE_DIR WHEEL_DIR}"
python="${PYTHON:-python}"
"$python" -m pip wheel --only-binary=:all: --no-binary=shipper --wheel-dir "$out" "$src"
