"""Is ``state_dir`` usable? Checked by ``shipper check`` and before ``shipper run`` starts.

Everything the agent must not lose lives there (checkpoints, disk buffers, dead letters), so a
directory that cannot be created or written is a start-up error reported in one line, not a
traceback from the first component that touches it. Two functions:

* ``state_dir_problem`` only looks (``shipper check`` creates nothing): the directory, or the
  nearest existing parent it would be created in, must be a writable directory on a file
  system mounted read-write.
* ``prepare_state_dir`` creates the directory and proves it writable by creating and removing
  a probe file, which is what ``run`` needs to know.

Faults after start (a disk that fills, EIO) are not start-up errors: each component retries
them with backoff and reports them (``/readyz``, ``shipper_storage_errors_total``).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from shipper.errors import StorageError

_PROBE = ".shipper-write-probe"


def _writable_problem(directory: Path) -> str | None:
    if not directory.is_dir():
        return f"{directory} is not a directory"
    with contextlib.suppress(OSError):
        if os.statvfs(directory).f_flag & os.ST_RDONLY:
            return f"{directory} is on a read-only file system"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"{directory} is not writable by this user (uid {os.geteuid()})"
    return None


def state_dir_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot serve as the state directory, or None (creates nothing)."""
    directory = Path(path).absolute()
    try:
        if directory.exists():
            problem = _writable_problem(directory)
            return f"cannot write to {directory}: {problem}" if problem else None
        parent = directory.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        problem = _writable_problem(parent)
        return f"cannot create {directory}: {problem}" if problem else None
    except OSError as exc:  # a component we may not even look into
        return f"cannot use {directory}: {exc.strerror or exc}"


def prepare_state_dir(path: str | Path) -> None:
    """Create ``path`` if needed and prove it writable; StorageError (one line) if not."""
    directory = Path(path).absolute()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create {directory}: {exc.strerror or exc}") from exc
    probe = directory / f"{_PROBE}.{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise StorageError(f"cannot write to {directory}: {exc.strerror or exc}") from exc
