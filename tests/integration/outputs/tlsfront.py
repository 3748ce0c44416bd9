"""A TLS front on loopback for a plain-HTTP server: the certificate it presents can be switched.

Tests of certificate verification need a server whose certificate the client does not trust
(another CA, another host name) in front of the real Elasticsearch, and then the same address
with a certificate it does trust (the server got a new certificate). ``use(cert)`` switches
the certificate for new connections and closes the open ones, so keep-alive connections meet
the new certificate at once. Threads, not an event loop: agents under test run their own.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from typing import Any

import trustme

_ACCEPT_POLL_SECS = 0.05
_IO_TIMEOUT_SECS = 30.0


def server_context(cert: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


class TlsFront:
    """``https://127.0.0.1:<port>`` → ``target`` (plain TCP), presenting ``cert``."""

    def __init__(self, target_host: str, target_port: int, cert: trustme.LeafCert) -> None:
        self.target = (target_host, target_port)
        self._context = server_context(cert)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(_ACCEPT_POLL_SECS)
        self.port = self._listener.getsockname()[1]
        self.handshakes_failed = 0
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True, name="tlsfront")

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> TlsFront:
        self._thread.start()
        return self

    def use(self, cert: trustme.LeafCert) -> None:
        """Present ``cert`` from now on; connections made with the old one are closed."""
        context = server_context(cert)
        with self._lock:
            self._context = context
            open_now, self._open = self._open, set()
        for sock in open_now:
            _close(sock)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._listener.close()
        with self._lock:
            open_now, self._open = self._open, set()
        for sock in open_now:
            _close(sock)

    def __enter__(self) -> TlsFront:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(_IO_TIMEOUT_SECS)
        with self._lock:
            context = self._context
        try:
            tls = context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):  # the client refused our certificate
            with self._lock:
                self.handshakes_failed += 1
            _close(conn)
            return
        try:
            upstream = socket.create_connection(self.target, timeout=_IO_TIMEOUT_SECS)
        except OSError:
            _close(tls)
            return
        with self._lock:
            self._open.update((tls, upstream))
        back = threading.Thread(target=_pipe, args=(upstream, tls), daemon=True)
        back.start()
        _pipe(tls, upstream)
        back.join(timeout=_IO_TIMEOUT_SECS)
        with self._lock:
            self._open.difference_update((tls, upstream))


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    """Copy until either side closes, then close both."""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        _close(src)
        _close(dst)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
