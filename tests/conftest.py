"""Shared fixtures. Kept minimal: component fixtures live next to their tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.es_server import elasticsearch_url


@pytest.fixture(scope="session")
def es_url() -> Iterator[str]:
    """Base URL of a real Elasticsearch, started once per test session (tests/es_server.py)."""
    with elasticsearch_url() as url:
        yield url
