"""The forward server tests' certificates serve the output tests too."""

from tests.integration.sources.forward.conftest import certs

__all__ = ["certs"]
