"""The file operations of the disk buffer, in one replaceable object.

Every system call the buffer makes goes through ``Storage``, so a test can make any of them
fail (ENOSPC on a write, EIO on an fsync) and check that inputs pause, nothing is corrupted
and delivery resumes when the fault clears — faults a real disk cannot be asked to produce
on demand. All methods block: the buffer calls them from a worker thread.
"""

from __future__ import annotations

import os
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


class Storage:
    """Plain POSIX file operations (the production implementation)."""

    def create(self, path: Path, header: bytes) -> int:
        """Create a new segment holding ``header``; returns its file descriptor."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            self.pwrite(fd, header, 0)
        except OSError:
            os.close(fd)
            raise
        return fd

    def pwrite(self, fd: int, data: bytes, offset: int) -> None:
        """Write all of ``data`` at ``offset`` (a retry after a failure rewrites the same
        range, so a partial write never leaves a hole or a duplicate)."""
        view = memoryview(data)
        while view:
            written = os.pwrite(fd, view, offset)
            view = view[written:]
            offset += written

    def truncate(self, fd: int, size: int) -> None:
        os.ftruncate(fd, size)

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def fsync_file(self, path: Path) -> None:
        """fsync an existing file by name (recovered segments may still be only in the page
        cache after a process crash)."""
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def fsync_dir(self, path: Path) -> None:
        fd = os.open(path, _DIR_FLAGS)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self, fd: int) -> None:
        os.close(fd)

    def read(self, path: Path) -> bytes:
        with open(path, "rb") as fh:
            return fh.read()

    def write_file(self, path: Path, data: bytes) -> None:
        """Create ``path`` with ``data`` and fsync it (the salvage copy of a damaged segment)."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            self.pwrite(fd, data, 0)
            os.fsync(fd)
        finally:
            os.close(fd)

    def rename(self, src: Path, dst: Path) -> None:
        os.replace(src, dst)

    def unlink(self, path: Path) -> None:
        os.unlink(path)
