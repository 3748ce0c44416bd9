#!/bin/sh
# Final-stage step of the Dockerfile: install shipper from the builder's wheels only (no
# index, so nothing else can slip in), then remove the packaging tools the agent never uses.
# The test suite runs this same script in a clean virtualenv (tests/k8s/test_image.py).
set -eu
wheels="${1:?usage: install-wheels.sh WHEEL_DIR}"
python="${PYTHON:-python}"
"$python" -m pip install --no-index --find-links "$wheels" shipper
"$python" -m pip uninstall --yes setuptools wheel pip
"$python" -c "import shipper.cli" && echo "shipper installed"
