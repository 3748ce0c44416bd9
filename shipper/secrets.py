"""Secrets read from files mounted from Kubernetes Secrets, re-read when they change.

Kubernetes updates a mounted Secret by swapping a symlink, so a changed token or password
shows up as a new mtime/inode of the path. Reading it at every use would cost a syscall and a
read per request; a ``stat`` is enough to notice the change. The value is stripped of the
trailing newline editors and ``kubectl create secret --from-file`` leave behind.
"""

from __future__ import annotations

import os

from shipper.errors import StorageError


class SecretFile:
    """The current content of a secret file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._value = ""

    def value(self) -> str:
        """The secret, re-read if the file changed since the last call."""
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise StorageError(f"cannot read secret file {self.path}: {exc.strerror}") from exc
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            try:
                with open(self.path, encoding="utf-8") as fh:
                    self._value = fh.read().strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise StorageError(f"cannot read secret file {self.path}: {exc}") from exc
            self._stamp = stamp
        return self._value

    def __repr__(self) -> str:
        return f"SecretFile({self.path!r})"
