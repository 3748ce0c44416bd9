"""Files the tail found but cannot open (permissions, SELinux labels, I/O errors).

Such a file is not waiting for a descriptor: raising ``max_open_files`` does not help, so it
is counted apart (``shipper_files_unreadable``), never in ``shipper_files_waiting``. Opening
it is retried at every descriptor hand-over; the warning ``tail_open_failed`` is written at
the first failure and then again every ``REPEAT_SECS`` while it lasts, with the same text (so
the log rate limiter sees one condition) and ``failing_secs`` saying for how long. When the
file opens again, ``tail_open_recovered`` is logged once. A file that goes away while
unreadable is simply forgotten (its deletion is reported by the usual paths).

A matched path that cannot even be followed to a file is counted the same way: a symlink
whose target does not exist (``/var/log/containers/*.log`` pointing into a docker data-root
the agent does not mount) or a path whose ``stat`` fails (``unresolved``). Its warning is
the same ``tail_open_failed``, on the same schedule, naming the missing target.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Container, Mapping
from dataclasses import dataclass

from prometheus_client import Gauge

log = logging.getLogger(__name__)

#: A failure that lasts is logged again this often (per file): long enough not to flood the
#: agent's own log, short enough that a recent log window still shows the condition.
REPEAT_SECS = 300.0
#: Appended to the warning of a dangling symlink: the usual cause on Kubernetes nodes.
DANGLING_HINT = ("if the container runtime keeps its logs elsewhere (e.g. a custom docker "
                 "data-root), mount that directory into the agent at the same path")


@dataclass(slots=True)
class _Failing:
    since: float
    warned_at: float


class Unreadable:
    """The paths of one tail source whose last open failed, with their warning schedule."""

    def __init__(self, source: str, gauge: Gauge, clock: Callable[[], float]) -> None:
        """``gauge``: this source's child of ``shipper_files_unreadable``."""
        self._source = source
        self._gauge = gauge
        self._clock = clock
        self._paths: dict[str, _Failing] = {}
        self._unresolved: dict[str, _Failing] = {}
        self._failing = 0  # readers whose last open failed (``update``)

    def __contains__(self, path: object) -> bool:
        return path in self._paths

    def __len__(self) -> int:
        return len(self._paths)

    def failed(self, path: str, exc: OSError) -> None:
        """An open of ``path`` failed (not ENOENT): warn now, or again when it is time."""
        now = self._clock()
        state = self._paths.get(path)
        if state is None:
            self._paths[path] = _Failing(now, now)
        elif now - state.warned_at >= REPEAT_SECS:
            state.warned_at = now
        else:
            return
        since = self._paths[path].since
        log.warning("tail %s: cannot open %s: %s", self._source, path, exc,
                    extra={"event": "tail_open_failed", "source": self._source, "path": path,
                           "failing_secs": round(now - since)})

    def opened(self, path: str) -> None:
        """``path`` was opened: if it had failed, say once that it is read again."""
        state = self._paths.pop(path, None)
        if state is None:
            return
        log.info("tail %s: %s can be opened again after %ds; reading it", self._source, path,
                 round(self._clock() - state.since),
                 extra={"event": "tail_open_recovered", "source": self._source, "path": path})

    def update(self, failing: Collection[str]) -> None:
        """``failing``: the paths of the readers that still want a descriptor and whose
        last open failed. Sets the gauge; forgets paths no reader wants any more."""
        self._failing = len(failing)
        self._gauge.set(self._failing + len(self._unresolved))
        if len(failing) != len(self._paths):
            keep = set(failing)
            for path in [p for p in self._paths if p not in keep]:
                del self._paths[path]

    def unresolved(self, problems: Mapping[str, str], present: Container[str]) -> None:
        """``problems``: {path: why} of the matched paths that cannot be followed to a file,
        from this rescan (``Discovery.unresolved``); ``present``: every path it matched.

        Warns about each at once, then every ``REPEAT_SECS``; a path that resolves again and
        is still matched gets ``tail_open_recovered``, one no longer matched is forgotten."""
        now = self._clock()
        for path, why in problems.items():
            state = self._unresolved.get(path)
            if state is None:
                state = self._unresolved[path] = _Failing(now, now)
            elif now - state.warned_at >= REPEAT_SECS:
                state.warned_at = now
            else:
                continue
            hint = f"; {DANGLING_HINT}" if "symlink" in why else ""
            log.warning("tail %s: cannot open %s: %s%s", self._source, path, why, hint,
                        extra={"event": "tail_open_failed", "source": self._source,
                               "path": path, "failing_secs": round(now - state.since)})
        for path in [p for p in self._unresolved if p not in problems]:
            state = self._unresolved.pop(path)
            if path in present:
                log.info("tail %s: %s can be opened again after %ds; reading it", self._source,
                         path, round(now - state.since),
                         extra={"event": "tail_open_recovered", "source": self._source,
                                "path": path})
        self._gauge.set(self._failing + len(self._unresolved))
