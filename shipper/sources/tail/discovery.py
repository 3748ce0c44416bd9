"""Finding the files to tail: glob rescans, woken early by file-system events.

The globs are the truth; events only make a rescan (or a read) happen sooner. inotify does
not fire for writes behind a symlink (``/var/log/containers`` holds only symlinks), can
overflow, and watchdog may be missing or out of watches — so a periodic rescan every
``refresh_interval_secs`` always runs, and open files are polled for growth by the source.

The watchdog observer runs on its own thread; events are handed to the event loop with
``loop.call_soon_threadsafe`` and nothing else crosses threads. ``Watcher.complete`` says
whether every include directory is watched; when not, the source rescans more often.

The agent's own pod is excluded by default (reliability T18, fluent-bit#354: an agent that
ships its own logs amplifies every error it logs about a failing output). It is recognised
by the Kubernetes names in the path (``paths.parse_path``): the pod name from ``POD_NAME``
(downward API) or the host name, which is the pod name unless the pod uses the host network;
the namespace from ``POD_NAMESPACE`` when set.

With ``workers: N`` each worker process discovers only the files of its shard
(``shipper.workers.shard``): the others' files never enter its table, its checkpoints or
its orphan reconciliation, so no file is opened by two workers.
"""

from __future__ import annotations

import asyncio
import errno
import glob
import logging
import os
import socket
from collections.abc import Callable, Iterable, Mapping
from fnmatch import fnmatchcase
from typing import Any

from shipper.sources.tail.paths import parse_path

log = logging.getLogger(__name__)

# kubelet's compressed and temporary rotations, and archives: never tailed.
BUILTIN_EXCLUDE_SUFFIXES = (".gz", ".tmp", ".zip")
_CACHE_MAX = 65536
#: errno values of a path that is not there (as opposed to one the agent may not look at).
_ABSENT = (errno.ENOENT, errno.ENOTDIR)


def probe_dir(directory: str) -> None:
    """List ``directory`` (one entry is enough): raises the ``OSError`` that would make
    ``glob`` find nothing there without a word (EACCES for a directory the agent may not
    list). A module-level seam, so tests running as root can inject the failure."""
    with os.scandir(directory) as entries:
        next(entries, None)


def matches_any(path: str, patterns: list[str]) -> bool:
    """True when a glob matches the full path or the file name."""
    name = os.path.basename(path)
    return any(fnmatchcase(path, pattern) or fnmatchcase(name, pattern) for pattern in patterns)


def own_pod(environ: Mapping[str, str] | None = None) -> tuple[str, str | None]:
    """(pod name, namespace or None) of the pod this agent runs in."""
    env = os.environ if environ is None else environ
    name = env.get("POD_NAME") or env.get("HOSTNAME") or socket.gethostname()
    return name, env.get("POD_NAMESPACE") or None


class Discovery:
    """Expands include globs minus excludes into a sorted list of paths."""

    def __init__(self, include: list[str], exclude: list[str],
                 own: tuple[str, str | None] | None = None,
                 shard: Callable[[str], bool] | None = None) -> None:
        """``own``: (pod name, namespace or None) whose files are skipped; ``shard``: called
        with a path's real path, False when another worker process reads that file."""
        self.include = list(include)
        self.exclude = list(exclude)
        self.own = own
        self.shard = shard
        self._own_cache: dict[str, bool] = {}

    def excluded(self, path: str) -> bool:
        if path.endswith(BUILTIN_EXCLUDE_SUFFIXES):
            return True
        return matches_any(path, self.exclude) or self._is_own(path)

    def _is_own(self, path: str) -> bool:
        if self.own is None:
            return False
        hit = self._own_cache.get(path)
        if hit is None:
            names = parse_path(path, "").kubernetes or {}
            pod, namespace = self.own
            hit = names.get("pod_name") == pod and namespace in (None, names.get(
                "namespace_name"))
            if len(self._own_cache) >= _CACHE_MAX:
                self._own_cache.clear()
            self._own_cache[path] = hit
        return hit

    def scan(self) -> list[str]:
        """Every matching path, sorted (deterministic order = deterministic choices)."""
        found: set[str] = set()
        for pattern in self.include:
            for path in glob.glob(pattern):
                if not self.excluded(path):
                    found.add(path)
        if self.shard is not None:  # another worker's files are not ours to see at all
            found = {p for p in found if self.shard(os.path.realpath(p))}
        return sorted(found)

    def watch_dirs(self) -> list[tuple[str, bool]]:
        """(directory, recursive) to watch: the glob-free prefix of each include's directory."""
        dirs: dict[str, bool] = {}
        for pattern in self.include:
            directory = os.path.dirname(pattern) or "."
            recursive = False
            while glob.has_magic(directory):
                directory = os.path.dirname(directory)
                recursive = True
            dirs[directory] = dirs.get(directory, False) or recursive
        return sorted(dirs.items())

    def missing_dirs(self) -> list[str]:
        """The include directories (``watch_dirs``) that do not exist now, sorted.

        Normal for a while on a booting node (``/var/log/containers`` is created with the
        first container), a typo when it lasts: the source reports both, and globs them on.
        """
        return self.dir_problems()[0]

    def dir_problems(self) -> tuple[list[str], dict[str, str]]:
        """(missing include directories, {unreadable include directory: why}).

        A directory the agent may not list (mode 000, a parent without ``x``, SELinux) looks
        empty to ``glob``: without this its files would be ignored in silence."""
        missing: list[str] = []
        unreadable: dict[str, str] = {}
        for directory, _ in self.watch_dirs():
            try:
                if not os.path.isdir(directory) and os.path.exists(directory):
                    missing.append(directory)  # a file, not a directory: a typo
                    continue
                probe_dir(directory)
            except OSError as exc:
                if exc.errno in _ABSENT:
                    missing.append(directory)
                else:
                    unreadable[directory] = exc.strerror or str(exc)
        return missing, unreadable

    @staticmethod
    def unresolved(paths: Iterable[str]) -> dict[str, str]:
        """{path: why} for the matched paths that cannot be followed to a file: a symlink
        whose target does not exist (``-> target (missing)``) or a path whose ``stat`` fails
        for another reason than its absence (permissions on the target's directories).

        Only called with the few paths the file table did not take, at each rescan; a plain
        file deleted since the glob (ENOENT, not a link) is no problem."""
        found: dict[str, str] = {}
        for path in paths:
            try:
                os.stat(path)
            except OSError as exc:
                if exc.errno in _ABSENT:
                    try:
                        target = os.readlink(path)
                    except OSError:
                        continue  # not a link (or gone): deleted since the glob
                    if not os.path.isabs(target):
                        target = os.path.join(os.path.dirname(path), target)
                    found[path] = f"it is a symlink to {target}, which does not exist"
                else:
                    found[path] = exc.strerror or str(exc)
        return found


class Watcher:
    """Optional watchdog observer; calls ``on_event(structural)`` on the loop thread.

    ``structural`` is True for creations, deletions and moves (a rescan is due) and False for
    modifications (a read pass is due).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 on_event: Callable[[bool], None]) -> None:
        self._loop = loop
        self._on_event = on_event
        self._observer: Any = None
        self._watched: set[str] = set()
        self._failed: set[str] = set()
        self.complete = False  # every include directory is watched

    def ensure(self, dirs: list[tuple[str, bool]]) -> None:
        """Start the observer and watch every existing directory not yet watched.

        Called at every rescan, so a directory created after start is picked up then.
        Failures (no watchdog, no inotify watches left) are logged once; polling covers.
        """
        try:
            if self._observer is None:
                from watchdog.observers import Observer

                self._observer = Observer()
                self._observer.daemon = True
                self._observer.start()
        except Exception as exc:  # any failure to start just means "poll only"
            if "observer" not in self._failed:
                self._failed.add("observer")
                log.warning("file events unavailable (%s); relying on polling", exc,
                            extra={"event": "tail_watch_unavailable"})
            self.complete = False
            return
        handler = _Handler(self._loop, self._on_event)
        complete = True
        for directory, recursive in dirs:
            if directory in self._watched:
                continue
            if not os.path.isdir(directory):
                complete = False
                continue
            try:
                self._observer.schedule(handler, directory, recursive=recursive)
                self._watched.add(directory)
            except Exception as exc:  # inotify limits, permissions: poll instead
                complete = False
                if directory not in self._failed:
                    self._failed.add(directory)
                    log.warning("cannot watch %s (%s); relying on polling", directory, exc,
                                extra={"event": "tail_watch_unavailable"})
        self.complete = complete

    def stop(self) -> None:
        """Stop the observer thread without waiting for it (it is a daemon thread)."""
        if self._observer is not None:
            try:
                self._observer.stop()
            except Exception as exc:
                log.debug("stopping the file observer failed: %s", exc)
            self._observer = None
        self.complete = False


class _Handler:
    """watchdog event handler (duck-typed ``dispatch``): forwards to the loop, thread-safe."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_event: Callable[[bool], None]) -> None:
        self._loop = loop
        self._on_event = on_event

    def dispatch(self, event: Any) -> None:
        kind = getattr(event, "event_type", "")
        if kind in ("opened", "closed_no_write"):
            return
        structural = kind in ("created", "deleted", "moved")
        try:
            self._loop.call_soon_threadsafe(self._on_event, structural)
        except RuntimeError:  # loop closed while the observer was still running
            pass
