"""A small blocking HTTP client for the dashboards commands (Kibana and Elasticsearch).

The commands are one-shot CLI tools, so plain ``urllib`` is enough: bounded timeouts, TLS with
an optional CA file, Basic or ApiKey authorization on every request, and any HTTP status
returned to the caller instead of raised (Kibana answers 200 even when objects failed, and
4xx bodies carry the reason). Connection failures become ``DashboardsError``.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shipper.errors import DashboardsError


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except json.JSONDecodeError as exc:
            raise DashboardsError(f"HTTP {self.status}: not JSON: {self.body[:200]!r}") from exc


def auth_header(user: str | None = None, password: str | None = None,
                api_key: str | None = None) -> dict[str, str]:
    """``Authorization`` for an API key (``id:key`` is base64-encoded) or Basic auth."""
    if api_key:
        token = api_key
        if ":" in token:
            token = base64.b64encode(token.encode()).decode("ascii")
        return {"Authorization": f"ApiKey {token}"}
    if user is not None:
        token = base64.b64encode(f"{user}:{password or ''}".encode()).decode("ascii")
        return {"Authorization": f"Basic {token}"}
    return {}


class HttpClient:
    """Requests against one base URL (a path prefix in it is kept, for proxies; user:password
    in it becomes Basic authorization)."""

    def __init__(self, base_url: str, headers: Mapping[str, str] | None = None,
                 ca_file: str | None = None, timeout_secs: float = 30.0) -> None:
        parts = urllib.parse.urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DashboardsError(f"{base_url!r} must be a URL like http://kibana:5601")
        self.headers = dict(headers or {})
        if parts.username is not None:  # http://user:pass@host: credentials become a header
            if "Authorization" not in self.headers:
                self.headers.update(auth_header(urllib.parse.unquote(parts.username),
                                                urllib.parse.unquote(parts.password or "")))
            host = parts.hostname or ""
            netloc = f"[{host}]" if ":" in host else host
            netloc += f":{parts.port}" if parts.port else ""
            parts = parts._replace(netloc=netloc)
        self.base = urllib.parse.urlunsplit(parts)
        self.timeout = timeout_secs
        self._context: ssl.SSLContext | None = None
        if parts.scheme == "https":
            try:
                self._context = ssl.create_default_context(cafile=ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise DashboardsError(f"cannot use CA file {ca_file}: {exc}") from exc

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> Response:
        req = urllib.request.Request(self.base + path, data=body, method=method)
        for key, value in {**self.headers, **(headers or {})}.items():
            req.add_header(key, value)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout,
                                        context=self._context) as resp:
                return Response(resp.status, resp.read())
        except urllib.error.HTTPError as exc:
            return Response(exc.code, exc.read())
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DashboardsError(f"{method} {self.base}{path}: {reason}") from exc

    def json(self, method: str, path: str, body: Any = None) -> Response:
        data = json.dumps(body).encode() if body is not None else None
        return self.request(method, path, data, {"Content-Type": "application/json",
                                                  "Accept": "application/json"})
