"""Fixtures for the logzio output against the local listener (tests/logzio_listener.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.outputs.logzio.support import TOKEN
from tests.logzio_listener import LogzioListener


@pytest.fixture
def listener() -> Iterator[LogzioListener]:
    """A listener on a free loopback port that accepts ``TOKEN``."""
    with LogzioListener({TOKEN}) as running:
        yield running
