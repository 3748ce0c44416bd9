"""The log shipping token: where it comes from, and keeping it out of every text we produce.

The listener takes the token in the query string (spec §2.1), so the request URL is a secret.
Two rules follow. First, no URL with a token is ever put in a message: errors are built from
the exception type and a redacted text, never chained (a chained urllib3 error would print
the URL in a traceback), and ``redact`` is applied to anything that came from the network.
Second, the third-party code that sees the URL (urllib3 logs it at debug level) gets a log
filter that rewrites ``token=...`` before any handler formats the record.

The token comes from the config (usually ``${LOGZIO_TOKEN}``) or from a file mounted from a
Kubernetes Secret. The file is checked on every request (one ``stat``) and read again when its
identity, size or modification time changed: the kubelet updates a Secret volume by swapping a
symlink, so a rotated token is picked up without a restart. An empty or unreadable file keeps
the last good token, because shipping with the old token is better than shipping with none.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable

from shipper.errors import OutputCredentialsError

MASK = "<hidden>"
# A token in a URL query, whatever its value: catches tokens we never knew (an old rotated one
# in a stale message, a token someone pasted into the listener URL).
_QUERY_TOKEN = re.compile(r"(token=)[^&\s'\"<>]+", re.IGNORECASE)
# Loggers of the HTTP client that format the request URL (urllib3 debug lines).
_URL_LOGGERS = ("urllib3.connectionpool", "urllib3.connection", "urllib3.util.retry")

log = logging.getLogger(__name__)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret and every ``token=<value>`` replaced by a mask."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return _QUERY_TOKEN.sub(r"\1" + MASK, text)


class RedactTokenFilter(logging.Filter):
    """Rewrites a log record's message so that no ``token=<value>`` reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the caller's problem, not a reason to leak
            message = str(record.msg)
        clean = redact(message)
        if clean != message:
            record.msg = clean
            record.args = None
        return True


_FILTER = RedactTokenFilter()


def install_log_redaction() -> None:
    """Attach the filter to the HTTP client's loggers (idempotent)."""
    for name in _URL_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


class TokenSource:
    """The current token, from the config or from a file that is re-read when it changes."""

    def __init__(self, output: str, token: str | None = None, token_file: str | None = None,
                 ) -> None:
        if (token is None) == (token_file is None):
            raise ValueError("exactly one of token and token_file is required")
        self._output = output
        self._token = token
        self._file = token_file
        self._stamp: tuple[int, int, int, int] | None = None
        self._problem: str | None = None
        # Every token this source has held: redacted from messages even after a rotation.
        self._known: list[str] = [token] if token else []

    @property
    def origin(self) -> str:
        """Where the token comes from, for messages (the file path is not a secret)."""
        return f"token_file {self._file}" if self._file is not None else "token"

    @property
    def known(self) -> tuple[str, ...]:
        return tuple(self._known)

    @property
    def problem(self) -> str | None:
        """Why the file could not be used the last time it was read, if it could not."""
        return self._problem

    def current(self) -> str:
        """The token to send now; re-reads the file if it changed.

        Raises OutputCredentialsError when there has never been a usable token.
        """
        if self._file is not None:
            self._refresh(self._file)
        if not self._token:
            detail = f": {self._problem}" if self._problem else ""
            raise OutputCredentialsError(
                f"output {self._output}: no Logz.io token from {self.origin}{detail}")
        return self._token

    def _refresh(self, path: str) -> None:
        try:
            st = os.stat(path)
        except OSError as exc:
            self._fail(f"cannot read {path}: {exc.strerror or exc}", stamp=None)
            return
        stamp = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        try:
            with open(path, encoding="utf-8") as fh:
                value = fh.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            self._fail(f"cannot read {path}: {type(exc).__name__}", stamp)
            return
        if not value or any(c.isspace() or not c.isprintable() for c in value):
            self._fail(f"{path} is empty or holds more than one token", stamp)
            return
        self._stamp = stamp
        self._problem = None
        if value != self._token:
            changed = self._token is not None
            self._token = value
            if value not in self._known:
                self._known.append(value)
            log.info("output %s: %s the Logz.io token from %s", self._output,
                     "reloaded" if changed else "loaded", path,
                     extra={"event": "logzio_token_loaded", "output": self._output})

    def _fail(self, problem: str, stamp: tuple[int, int, int, int] | None) -> None:
        """Keep the last good token; say so once per change of the file."""
        if problem != self._problem:
            keeping = "keeping the previous token" if self._token else "no token yet"
            log.warning("output %s: %s; %s", self._output, problem, keeping,
                        extra={"event": "logzio_token_unreadable", "output": self._output})
        self._problem = problem
        self._stamp = stamp
