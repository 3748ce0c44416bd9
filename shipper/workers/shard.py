"""Which worker reads a file: a stable hash of the file's *shard key*, modulo the count.

The key is not the discovered path itself, because the tail follows more than one path per
file and more than one file per path, and every file must be read by exactly one worker:

* Two include paths can lead to one file (a ``/var/log/containers`` symlink and its target
  under ``/var/log/pods``); one process dedups them by inode, two could not. So the key is
  built from the *real* path (symlinks resolved).
* Rotated generations of a file are its siblings ``<name>.*`` (``0.log.20240101-...``,
  ``app.log.1``, ``app.log.2.gz``), adopted by whoever follows ``<name>``. So the key keeps
  only the part of the file name before its first dot: every sibling gets the same key.
* A kubelet container directory holds one file per restart (``0.log``, ``1.log``...), and
  the tail reads the restarts it did not see (a symlink moved from ``0.log`` to ``2.log``)
  by listing that directory. So for such files the key is the directory: all restarts of a
  container go to one worker.

The hash is blake2b of the key's bytes, never Python's ``hash()`` (randomized per process):
every worker, and every restart, must compute the same answer.
"""

from __future__ import annotations

import os
from hashlib import blake2b


def shard_key(real_path: str) -> str:
    """What decides the worker of the file at ``real_path`` (symlinks already resolved)."""
    directory, name = os.path.split(real_path)
    stem = name.split(".", 1)[0]
    if stem.isdigit() and name[len(stem):].startswith(".log"):
        return directory + os.sep  # kubelet's <restart count>.log: the container's directory
    return os.path.join(directory, stem)


def shard_of(real_path: str, count: int) -> int:
    """The worker index (``0..count-1``) that reads the file at ``real_path``."""
    if count <= 1:
        return 0
    digest = blake2b(shard_key(real_path).encode("utf-8", "surrogateescape"),
                     digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


class PathShard:
    """The tail's path filter for one worker: ``owns(path)`` for discovered paths,
    ``owns_real(real_path)`` when the caller resolved the path already."""

    def __init__(self, index: int, count: int) -> None:
        if not 0 <= index < count:
            raise ValueError(f"worker index {index} is not in 0..{count - 1}")
        self.index = index
        self.count = count

    def owns_real(self, real_path: str) -> bool:
        return shard_of(real_path, self.count) == self.index

    def owns(self, path: str) -> bool:
        return self.owns_real(os.path.realpath(path))

    def __repr__(self) -> str:
        return f"PathShard({self.index}/{self.count})"
