"""An embedded Elasticsearch-compatible server for the demo and the tests.

``noida-db`` (a PyPI package: one binary speaking the Elasticsearch REST API, no JVM, no
Docker) is started on a free loopback port with its own data directory and stopped again.
It keeps documents in memory, so it suits demos and tests of up to ~100k documents.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from shipper.errors import ShipperError


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_noida_binary() -> str:
    candidates = [shutil.which("noida-db"), str(Path(sys.executable).parent / "noida-db")]
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    raise ShipperError("the embedded Elasticsearch needs the 'noida-db' package "
                       "(pip install 'shipper[demo]'), or pass an Elasticsearch URL")


def wait_for_http(url: str, timeout_secs: float, proc: subprocess.Popen[bytes] | None = None,
                  ) -> None:
    deadline = time.monotonic() + timeout_secs
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ShipperError(f"embedded Elasticsearch exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.2)
    raise ShipperError(f"{url} did not answer within {timeout_secs:.0f}s ({last})")


class EmbeddedElasticsearch:
    """Context manager: a running noida-db Elasticsearch endpoint on 127.0.0.1."""

    def __init__(self, data_dir: Path, port: int | None = None, log_file: Path | None = None,
                 ) -> None:
        self.data_dir = data_dir
        self.port = port or free_loopback_port()
        self.log_file = log_file or data_dir / "server.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_secs: float = 60.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        binary = find_noida_binary()
        with open(self.log_file, "ab") as log:
            self._proc = subprocess.Popen(
                [binary, "start", "--only", "elasticsearch",
                 "--elasticsearch-port", str(self.port), "--data-dir", str(self.data_dir),
                 "--host", "127.0.0.1"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        try:
            wait_for_http(self.url + "/", timeout_secs, self._proc)
        except BaseException:
            self.stop()
            raise
        return self.url

    def stop(self) -> None:
        """Stop the server's whole process group (the launcher wraps the real binary)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for sig, wait_secs in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait_secs
            while time.monotonic() < deadline:
                proc.poll()
                if not _group_alive(proc.pid):
                    return
                time.sleep(0.05)

    def __enter__(self) -> EmbeddedElasticsearch:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
