"""The atheris fuzz target of the compiled loops, run for a bounded number of inputs (slow).

Needs the ``fuzz`` extra (``pip install -e '.[fuzz]'``): atheris ships binary wheels for
Linux x86-64 only, so it is not part of the ``test`` extra that every machine installs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TARGET = Path(__file__).with_name("speedups_target.py")
REPO = Path(__file__).resolve().parents[2]


def test_the_compiled_loops_survive_fuzzing_and_match_python(tmp_path: Path) -> None:
    pytest.importorskip("atheris", reason="the fuzz extra is not installed")
    pytest.importorskip("shipper._speedups", reason="the compiled extension is not built")
    sys.path.insert(0, str(REPO))
    try:
        from tests.fuzz.speedups_target import seeds
    finally:
        sys.path.remove(str(REPO))
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, seed in enumerate(seeds()):
        (corpus / f"seed-{i}").write_bytes(seed)
    runs = os.environ.get("SHIPPER_FUZZ_RUNS", "30000")
    done = subprocess.run(
        [sys.executable, str(TARGET), str(corpus), f"-runs={runs}", "-max_len=2048",
         f"-artifact_prefix={tmp_path}/", "-timeout=20"],
        cwd=REPO, capture_output=True, text=True, timeout=1200,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, f"fuzz finding:\n{done.stdout[-3000:]}{done.stderr[-6000:]}"
    assert "Done" in done.stderr, done.stderr[-2000:]
