"""``shipper dashboards import``: load the saved objects into Kibana or OpenSearch Dashboards.

One multipart ``POST /api/saved_objects/_import?overwrite=true`` (``/s/<space>`` in front for
a Kibana space) with the NDJSON as the part named ``file`` (spec §3.2). Fixed ids plus
``overwrite`` make it idempotent: run it after every upgrade. Both ``kbn-xsrf`` and
``osd-xsrf`` are sent, so Kibana and OpenSearch Dashboards each find the header they require
(spec §3.7).

Kibana answers 200 even when objects failed; the answer lists them in ``errors`` with a type
(``conflict``, ``missing_references``, ``unsupported_type``, ``unknown``), and every one of them
is reported. Before importing, and while Kibana answers 503 or cannot be reached, the command
waits with capped exponential backoff for at most ``wait_secs``; refused credentials end the
wait at once, since waiting cannot fix them.
"""

from __future__ import annotations

import secrets
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shipper.dashboards.http import HttpClient, Response
from shipper.errors import DashboardsError

XSRF_HEADERS = {"kbn-xsrf": "true", "osd-xsrf": "true"}
FIRST_DELAY_SECS = 0.5
MAX_DELAY_SECS = 5.0
_READY_LEVELS = {"available", "degraded"}  # Kibana 8: degraded still serves saved objects
_READY_STATES = {"green", "yellow"}  # Kibana 7 and OpenSearch Dashboards


@dataclass
class ImportResult:
    """What Kibana said about each object."""

    imported: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def import_path(space: str | None) -> str:
    prefix = ""
    if space and space != "default":
        prefix = "/s/" + urllib.parse.quote(space, safe="")
    return prefix + "/api/saved_objects/_import?overwrite=true"


def multipart(filename: str, data: bytes) -> tuple[bytes, str]:
    """(body, content type) of a form with one file part named ``file``."""
    boundary = "shipper-" + secrets.token_hex(16)
    head = (f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/ndjson\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), \
        f"multipart/form-data; boundary={boundary}"


def ready(resp: Response) -> tuple[bool, str]:
    """(is Kibana ready, what it said) from a ``GET /api/status`` answer."""
    if resp.status in (401, 403):
        raise DashboardsError(f"Kibana refused the credentials (HTTP {resp.status}); "
                              "check --user/--password or --api-key")
    if resp.status != 200:
        return False, f"HTTP {resp.status}"
    try:
        overall = ((resp.json() or {}).get("status") or {}).get("overall") or {}
    except (DashboardsError, AttributeError):
        return True, "HTTP 200"  # a status page we do not know: it answers, try the import
    level, state = overall.get("level"), overall.get("state")
    if level is not None:
        return level in _READY_LEVELS, f"level {level}"
    if state is not None:
        return state in _READY_STATES, f"state {state}"
    return True, "HTTP 200"


class Importer:
    """Waits for Kibana, then imports; ``sleep`` and ``clock`` are injectable for tests."""

    def __init__(self, client: HttpClient, wait_secs: float = 120.0,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic,
                 progress: Callable[[str], None] = lambda _: None) -> None:
        self.client = client
        self.sleep = sleep
        self.clock = clock
        self.deadline = clock() + wait_secs
        self.wait_secs = wait_secs
        self.progress = progress
        self._delay = FIRST_DELAY_SECS

    def _pause(self, why: str) -> None:
        if self.clock() + self._delay > self.deadline:
            raise DashboardsError(f"Kibana at {self.client.base} not ready within "
                                  f"{self.wait_secs:g}s ({why})")
        self.progress(f"waiting for Kibana ({why}); next try in {self._delay:g}s")
        self.sleep(self._delay)
        self._delay = min(self._delay * 2, MAX_DELAY_SECS)

    def wait_until_ready(self) -> None:
        while True:
            try:
                is_ready, why = ready(self.client.request("GET", "/api/status"))
            except DashboardsError as exc:
                if "refused the credentials" in str(exc):
                    raise
                is_ready, why = False, str(exc)
            if is_ready:
                return
            self._pause(why)

    def import_ndjson(self, data: bytes, space: str | None = None,
                      filename: str = "shipper-dashboards.ndjson") -> ImportResult:
        body, content_type = multipart(filename, data)
        headers = {**XSRF_HEADERS, "Content-Type": content_type, "Accept": "application/json"}
        while True:
            try:
                resp = self.client.request("POST", import_path(space), body, headers)
            except DashboardsError as exc:
                self._pause(str(exc))
                continue
            if resp.status in (502, 503, 504):
                self._pause(f"import answered HTTP {resp.status}")
                continue
            return parse_import_response(resp)


def _describe(item: dict[str, Any]) -> str:
    title = item.get("title") or (item.get("meta") or {}).get("title") or ""
    name = f"{item.get('type')} {item.get('id')}"
    return f"{name} ({title})" if title else name


def _error_text(error: dict[str, Any]) -> str:
    kind = str(error.get("type", "unknown"))
    if kind == "missing_references":
        refs = ", ".join(f"{r.get('type')} {r.get('id')}" for r in error.get("references", []))
        return f"missing_references: {refs}"
    if kind == "conflict" and error.get("destinationId"):
        return f"conflict with {error['destinationId']}"
    if kind == "ambiguous_conflict":
        return f"ambiguous_conflict: {len(error.get('destinations', []))} candidates"
    if error.get("message"):
        status = f" (HTTP {error['statusCode']})" if error.get("statusCode") else ""
        return f"{kind}: {error['message']}{status}"
    return kind


def parse_import_response(resp: Response) -> ImportResult:
    """Per-object successes and errors of an import answer; a non-200 is one error."""
    result = ImportResult()
    if resp.status != 200:
        try:
            answer = resp.json() or {}
            message = answer.get("message") or answer.get("error") or answer
        except (DashboardsError, AttributeError):
            message = resp.body[:300].decode(errors="replace")
        result.errors.append(f"import refused: HTTP {resp.status}: {message}")
        return result
    answer = resp.json()
    if not isinstance(answer, dict):
        result.errors.append(f"unexpected import answer: {resp.body[:300]!r}")
        return result
    for item in answer.get("successResults") or []:
        where = f" as {item['destinationId']}" if item.get("destinationId") else ""
        result.imported.append(_describe(item) + where)
    for item in answer.get("errors") or []:
        result.errors.append(f"{_describe(item)}: {_error_text(item.get('error') or {})}")
    if answer.get("success") is False and not result.errors:
        result.errors.append("Kibana reported success: false without errors")
    return result
