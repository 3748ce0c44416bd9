"""Which implementation of the per-line tail loops runs: the compiled extension or Python.

``shipper._speedups`` (Cython, built by ``pip install`` when a C compiler is there) holds the
tight per-line loops of the tail decoders; the pure-Python loops in ``sources.tail.formats``
stay as the reference and the fallback. ``SHIPPER_PURE_PYTHON=1`` forces the fallback (to
compare, or to rule the extension out when chasing a bug). ``IMPLEMENTATION`` is what runs:
``shipper --version``, the ``shipper_build_info`` metric and a log line at start show it.
"""

from __future__ import annotations

import os
from types import ModuleType

COMPILED = "compiled"
PYTHON = "python"


def _load() -> tuple[ModuleType | None, str]:
    """The extension module (None when not used) and why Python runs, if it does."""
    if os.environ.get("SHIPPER_PURE_PYTHON") == "1":
        return None, "SHIPPER_PURE_PYTHON=1"
    try:
        from shipper import _speedups  # type: ignore[attr-defined]
    except ImportError as exc:
        return None, f"extension not available ({exc})"
    return _speedups, ""


speedups, fallback_reason = _load()
IMPLEMENTATION = PYTHON if speedups is None else COMPILED
