"""Crash point names are checked; arming takes a name and an optional hit count."""

import pytest

from shipper import crashpoints


def test_an_unknown_point_is_refused_with_the_known_names():
    with pytest.raises(ValueError, match="buffer_after_write"):
        crashpoints.arm("buffer_after_wirte")


def test_the_count_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        crashpoints.arm("buffer_after_write:0")


def test_an_unarmed_or_other_point_does_nothing():
    crashpoints.arm("buffer_after_write:3")
    try:
        crashpoints.crashpoint("delivery_after_send")
        crashpoints.crashpoint("buffer_after_write")
        crashpoints.crashpoint("buffer_after_write")  # 2 of 3: still alive
    finally:
        crashpoints.arm(None)
    crashpoints.crashpoint("buffer_after_write")


def test_every_point_the_code_uses_is_documented():
    import pathlib
    import re

    root = pathlib.Path(crashpoints.__file__).parent
    used = set()
    for path in root.rglob("*.py"):
        used.update(re.findall(r'crashpoint\("([a-z_]+)"\)', path.read_text()))
    assert used, "no crash point found in the code"
    assert used <= set(crashpoints.POINTS)
    assert set(crashpoints.POINTS) <= used, "a documented point that nothing calls"
