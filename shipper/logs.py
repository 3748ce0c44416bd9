"""The agent's own logs: one JSON object per line, with a stable ``event`` name.

JSON so the agent can ship its own logs like any other container's. Extra fields passed with
``extra={...}`` become top-level keys; secrets never reach here because outputs redact URLs
and credentials before logging.

Repeated warnings and errors are rate-limited here, in one place, for every module: an
output that fails 100 times a second must not fill the node's disk with the same line
(fluentd#3158) or feed itself through its own log file (fluent-bit#354). The first line of a
condition is written at once; identical lines in the next ``window_secs`` are counted, not
written; when the window ends, the last of them is written once with ``repeated: N`` (how
many were held back). So a condition that lasts writes at most one line per window, and the
count says how bad it was. Info and debug lines are never held back.

Lines of libraries (``elastic_transport``, ``urllib3``, ``asyncio``...) carry no event of
ours and often a text that changes every time ("failed for 7 times in a row"), so a text-keyed
limit would never apply. ``LibraryEvents`` gives each a stable event (``es_node_failed``...,
``library_log`` for the rest) and names the library logger in ``library``; their repeats are
then keyed by event, not by text: an outage writes one such line per window.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

_STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}

#: Extra fields that name the component a line is about: part of the repeat key, so the
#: same error of two outputs is two conditions.
KEY_FIELDS = ("output", "source", "filter")
DEFAULT_WINDOW_SECS = 10.0
#: Conditions tracked at once; past this, new ones are written unthrottled rather than
#: evicting a live window (which would let a flood through with no count).
MAX_KEYS = 1024


class JsonFormatter(logging.Formatter):
    """Formats a log record as one JSON line; ``fields`` are added to every line (a worker
    process of ``workers: N`` adds ``worker: i``, so each line says who wrote it)."""

    def __init__(self, fields: Mapping[str, object] | None = None) -> None:
        super().__init__()
        self._fields = dict(fields or {})

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "event": getattr(record, "event", record.name),
            "msg": record.getMessage(),
            **self._fields,
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key != "event":
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


@dataclass(slots=True)
class _Window:
    until: float
    held: int = 0
    last: logging.LogRecord | None = None


#: Logger-name prefixes of our own code: their lines name their events themselves.
OWN_LOGGERS = ("shipper", "outputs", "bench")
#: Library logger prefix -> our event for its lines (first match wins; most specific first).
LIBRARY_EVENTS: tuple[tuple[str, str], ...] = (
    ("elastic_transport.node_pool", "es_node_failed"),
    ("elastic_transport.transport", "es_transport_retry"),
    ("elastic_transport", "es_transport"),
    ("urllib3", "http_client"),
    ("asyncio", "asyncio_error"),
)
LIBRARY_EVENT = "library_log"
#: Library lines that report a recovery on a logger that otherwise reports failures (and at
#: warning level): (logger, start of the message format, our event). They are written at
#: info level, so alerts on the failure event and its repeat window never include them.
LIBRARY_RECOVERIES: tuple[tuple[str, str, str], ...] = (
    ("elastic_transport.node_pool", "Node %r has been marked alive", "es_node_alive"),
)


def library_event(logger_name: str) -> str | None:
    """Our stable event for a library logger's lines; None for our own loggers."""
    for own in OWN_LOGGERS:
        if logger_name == own or logger_name.startswith(own + "."):
            return None
    for prefix, event in LIBRARY_EVENTS:
        if logger_name == prefix or logger_name.startswith(prefix + "."):
            return event
    return LIBRARY_EVENT


class LibraryEvents(logging.Filter):
    """A handler filter (placed before the ``RepeatLimiter``) that maps a library's lines onto
    our events: ``event`` from ``LIBRARY_EVENTS``, ``library`` the logger that wrote it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "event", None) is None:
            event = library_event(record.name)
            if event is not None:
                record.event = event
                record.library = record.name
                for name, start, recovered in LIBRARY_RECOVERIES:
                    if (record.name == name and isinstance(record.msg, str)
                            and record.msg.startswith(start)):
                        record.event = recovered
                        record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def repeat_key(record: logging.LogRecord) -> tuple[object, ...]:
    """What makes two lines "the same": logger, level, event, message and component; for a
    library's line, whose text varies ("failed for N times"), its event without the text."""
    text = None if getattr(record, "library", None) else record.getMessage()
    return (record.name, record.levelno, getattr(record, "event", None), text,
            *(getattr(record, k, None) for k in KEY_FIELDS))


class RepeatLimiter(logging.Filter):
    """A handler filter that holds back repeats of a warning/error and reports their count.

    ``emit`` writes the deferred ``repeated: N`` lines (the handler's ``handle``). Call
    ``flush_expired`` periodically (``start_flusher`` runs a daemon thread that does), so the
    count appears when the window ends even if the condition stopped; ``flush_all`` writes
    every pending count (at exit).
    """

    def __init__(self, emit: Callable[[logging.LogRecord], object],
                 window_secs: float = DEFAULT_WINDOW_SECS, level: int = logging.WARNING,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = MAX_KEYS) -> None:
        super().__init__()
        self._emit = emit
        self._window = window_secs
        self._level = level
        self._clock = clock
        self._max_keys = max_keys
        self._windows: dict[tuple[object, ...], _Window] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self._level or getattr(record, "repeated", None) is not None:
            return True  # below the limit, or one of our own summaries
        key = repeat_key(record)
        now = self._clock()
        with self._lock:
            window = self._windows.get(key)
            if window is None or now >= window.until:
                if window is not None and window.held:
                    record.repeated = window.held  # held back since the last line written
                if window is not None or len(self._windows) < self._max_keys:
                    self._windows[key] = _Window(now + self._window)
                    self._wake.set()
                return True
            window.held += 1
            window.last = record
            return False

    def flush_expired(self) -> float | None:
        """Write the count of every ended window; returns when the next one ends (or None)."""
        now = self._clock()
        due: list[logging.LogRecord] = []
        with self._lock:
            for key, window in list(self._windows.items()):
                if now < window.until:
                    continue
                if window.held and window.last is not None:
                    due.append(_summary(window.last, window.held))
                    self._windows[key] = _Window(now + self._window)  # that was a line
                else:
                    del self._windows[key]
            next_end = min((w.until for w in self._windows.values()), default=None)
        for record in due:
            self._emit(record)
        return next_end

    def flush_all(self) -> None:
        """Write every pending count now and forget all windows."""
        with self._lock:
            pending = [_summary(w.last, w.held) for w in self._windows.values()
                       if w.held and w.last is not None]
            self._windows.clear()
        for record in pending:
            self._emit(record)

    def start_flusher(self) -> None:
        """Run ``flush_expired`` in a daemon thread whenever a window ends."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._flush_loop, name="log-repeat-flusher",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Write the pending counts and end the flusher thread."""
        self._stopped = True
        self._wake.set()
        self.flush_all()

    def _flush_loop(self) -> None:
        while not self._stopped:
            next_end = self.flush_expired()
            timeout = None if next_end is None else max(0.05, next_end - self._clock())
            self._wake.wait(timeout)
            self._wake.clear()


def _summary(last: logging.LogRecord, held: int) -> logging.LogRecord:
    """The last held-back line, written once with how many were held back."""
    record = logging.makeLogRecord(last.__dict__)
    record.repeated = held
    record.exc_info = None  # one traceback per window is enough; the first line had it
    record.exc_text = None
    return record


_limiter: RepeatLimiter | None = None


def configure_logging(level: str = "info", window_secs: float = DEFAULT_WINDOW_SECS,
                      fields: Mapping[str, object] | None = None) -> None:
    """Route every logger to stderr as JSON lines, with repeated warnings rate-limited;
    ``fields`` are written on every line."""
    global _limiter
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(fields))
    if _limiter is not None:
        _limiter.stop()
    _limiter = RepeatLimiter(handler.handle, window_secs)
    handler.addFilter(LibraryEvents())  # before the limiter: it keys library lines by event
    handler.addFilter(_limiter)
    _limiter.start_flusher()
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("elastic_transport", "urllib3", "watchdog"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def flush_repeated() -> None:
    """Write the pending ``repeated`` counts (the agent calls this when it stops)."""
    if _limiter is not None:
        _limiter.flush_all()
