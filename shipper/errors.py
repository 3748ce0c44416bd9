"""The one exception hierarchy of shipper.

Third-party exceptions are translated at the boundary where they occur and chained
(``raise OutputRetryableError(...) from exc``), so callers only ever catch these.
"""

from __future__ import annotations

import ssl


class ShipperError(Exception):
    """Base of every error shipper raises on purpose."""


class ConfigProblem:
    """One problem in a configuration file, located by file, line and key path."""

    __slots__ = ("file", "key_path", "line", "message")

    def __init__(self, file: str, line: int | None, key_path: str, message: str) -> None:
        self.file = file
        self.line = line
        self.key_path = key_path
        self.message = message

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.key_path or '<root>'}: {self.message}"

    def __repr__(self) -> str:
        return f"ConfigProblem({str(self)!r})"


class ConfigError(ShipperError):
    """The configuration is invalid; carries every problem found, not just the first."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class SourceError(ShipperError):
    """A source cannot read its input (permissions, bind failure...)."""


class InputProtocolError(SourceError):
    """A client broke the wire protocol (malformed or oversized frame, failed handshake).

    Only that client's connection is closed; ``reason`` is a short, bounded label for metrics.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class FilterError(ShipperError):
    """A filter cannot be set up (no Kubernetes credentials or kubeconfig, unknown parser)."""


class KubernetesApiError(ShipperError):
    """A Kubernetes API request failed; ``status`` is the HTTP status (None: no response).

    Retried by the metadata watcher with backoff; never reaches the record path.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class BufferFullError(ShipperError):
    """A buffer refused records because its byte limit is reached (drop_newest policy)."""


class StorageError(ShipperError):
    """Persistent state (checkpoints, disk buffer, dead letters) cannot be read or written."""


class OutputError(ShipperError):
    """An output could not complete a request."""


class OutputRetryableError(OutputError):
    """Transient: the same request may succeed later (connection refused, timeout, 5xx)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OutputCredentialsError(OutputRetryableError):
    """The server rejected our credentials (401/403): keep the data, alert, retry slowly."""


class OutputTLSError(OutputRetryableError):
    """The server's certificate failed verification (unknown CA, wrong host name, expired).

    A configuration problem like rejected credentials: the output is not ready at once, with
    the reason, and keeps retrying, because the CA bundle or the certificate may be fixed.
    """


#: ``ItemError.type`` of a payload that was not sent because the certificate was refused.
TLS_ERROR_TYPE = "tls_error"


def tls_verify_failure(exc: BaseException) -> str | None:
    """``"certificate verify failed: <why>"`` when ``exc`` was caused by the server's
    certificate failing verification (anywhere in its cause chain), else None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            why = current.verify_message or current.reason or str(current)
            return f"certificate verify failed: {why}"
        if type(current).__name__ == "CertificateError":  # urllib3's own host name check
            return f"certificate verify failed: {current}"
        nested = [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        current = current.__cause__ or current.__context__ or (nested[0] if nested else None)
    return None


class OutputPermanentError(OutputError):
    """Retrying the same request cannot succeed (bad credentials, invalid request)."""


class DashboardsError(ShipperError):
    """Kibana saved objects could not be built, imported or checked (``shipper dashboards``)."""


class FluentdSyntaxError(ShipperError):
    """A Fluentd configuration cannot be read (``shipper migrate-fluentd``); located by line."""

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file = file
        self.line = line
        self.message = message
