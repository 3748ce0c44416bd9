"""The few read-only Elasticsearch calls the demo and its checks need (plain JSON over HTTP)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from shipper.errors import ShipperError


class SearchError(ShipperError):
    """A demo query failed (timed out, refused, answered with an error): the message names
    the query, the server and what to try. ``status`` is the HTTP status when the server
    answered (a 404 means the index does not exist yet)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SearchClient:
    """Minimal client: refresh, count and aggregate over an index pattern."""

    def __init__(self, url: str, timeout_secs: float = 30.0) -> None:
        parsed = urllib.parse.urlsplit(url.rstrip("/"))
        self._auth: str | None = None
        if parsed.username:
            token = f"{urllib.parse.unquote(parsed.username)}:"
            token += urllib.parse.unquote(parsed.password or "")
            self._auth = "Basic " + base64.b64encode(token.encode()).decode()
            netloc = parsed.hostname or ""
            if parsed.port:
                netloc += f":{parsed.port}"
            parsed = parsed._replace(netloc=netloc)
        self.base = urllib.parse.urlunsplit(parsed)
        self._timeout = timeout_secs

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One JSON call; ``SearchError`` (never a raw socket error) when it fails."""
        try:
            return self._request(method, path, body)
        except TimeoutError as exc:
            raise SearchError(
                f"{method} {path} timed out after {self._timeout:.0f}s on {self.base}: the "
                "server is slow or overloaded (the records may well be indexed; retry, or "
                "search the index from Kibana)") from exc
        except urllib.error.HTTPError as exc:
            raise SearchError(f"{method} {path} on {self.base} failed: HTTP {exc.code} "
                              f"{exc.reason}", status=exc.code) from exc
        except (OSError, ValueError) as exc:  # URLError, refused, reset, invalid JSON
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                raise SearchError(f"{method} {path} timed out after {self._timeout:.0f}s on "
                                  f"{self.base}: the server is slow or overloaded") from exc
            raise SearchError(f"{method} {path} on {self.base} failed: {reason}") from exc

    def _request(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        req.add_header("Accept", "application/json")
        if self._auth:
            req.add_header("Authorization", self._auth)
        with urllib.request.urlopen(req, timeout=self._timeout) as resp:
            return json.loads(resp.read() or b"null")

    def refresh(self, index: str) -> None:
        self.request("POST", f"/{index}/_refresh")

    def count(self, index: str, query: dict[str, Any] | None = None) -> int:
        body = {"query": query} if query is not None else None
        return int(self.request("POST", f"/{index}/_count", body)["count"])

    def kibana_count(self, index: str, kql_like: str,
                     scope: dict[str, Any] | None = None) -> int:
        """Count for a Kibana-style search bar query (Lucene query_string syntax), within
        ``scope`` (a filter query) when given."""
        return self.count(index, scoped({"query_string": {"query": kql_like}}, scope))

    def terms(self, index: str, field: str, size: int = 100,
              scope: dict[str, Any] | None = None) -> dict[str, int]:
        body: dict[str, Any] = {"size": 0,
                                "aggs": {"t": {"terms": {"field": field, "size": size}}}}
        if scope is not None:
            body["query"] = scope
        result = self.request("POST", f"/{index}/_search", body)
        return {b["key"]: b["doc_count"] for b in result["aggregations"]["t"]["buckets"]}


def scoped(query: dict[str, Any], scope: dict[str, Any] | None) -> dict[str, Any]:
    """``query`` restricted to the documents ``scope`` matches (None: no restriction)."""
    if scope is None:
        return query
    return {"bool": {"must": [query], "filter": [scope]}}
