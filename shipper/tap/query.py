"""Server-side tap filters: which access-log records one subscriber wants.

The same object is built by the CLI (from its arguments), sent as the ``/tap`` query string,
and parsed back by the agent, so both ends agree on the syntax:

=============  ===========================================================================
parameter      matches
=============  ===========================================================================
namespace      requests to or from pods of this namespace
workload       requests to or from this workload (owner name; Service name on the calling
               side, since an outbound line names only the destination Service)
pod            requests logged by this pod's sidecar
method         HTTP methods, comma separated (``GET,POST``), case-insensitive
code           response codes: ``500-599,429``, or ``5xx``
path           path prefix (``/api/v1/orders``)
authority      Host / :authority; without a port it matches any port
direction      ``inbound`` or ``outbound``
=============  ===========================================================================

"To or from" means: the reporting pod matches (namespace and workload both, when given), or
the line is outbound and its destination Service matches. That is what makes ``--pair`` work:
the client's outbound line and the server's inbound line of one request both reach a
subscriber that asked for the server's workload. Unknown parameters are an error, so a typo
never turns into "tap everything".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

PARAMETERS = ("namespace", "workload", "pod", "method", "code", "path", "authority",
              "direction")
_DIRECTIONS = ("inbound", "outbound")


#: What a response code can be: Envoy logs 0 when no response was sent, else 100-599.
NO_RESPONSE = 0
LOWEST_CODE, HIGHEST_CODE = 100, 599


def _valid_code(code: int) -> bool:
    return code == NO_RESPONSE or LOWEST_CODE <= code <= HIGHEST_CODE


def parse_codes(text: str) -> tuple[tuple[int, int], ...]:
    """``500-599,429`` or ``5xx`` into inclusive ranges; ValueError names the bad part.

    Only codes a request can have (0 for "no response", 100-599) are accepted: ``6xx`` or
    ``999`` can match nothing, and a tap that silently waits forever looks broken.
    """
    ranges: list[tuple[int, int]] = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        if len(part) == 3 and part[0].isdigit() and part[1:] == "xx":
            if not "1" <= part[0] <= "5":
                raise ValueError(f"response code {part!r}: classes are 1xx to 5xx")
            low = int(part[0]) * 100
            ranges.append((low, low + 99))
            continue
        low_text, sep, high_text = part.partition("-")
        try:
            low = int(low_text)
            high = int(high_text) if sep else low
        except ValueError:
            raise ValueError(f"response code {part!r}: expected N, N-M or Nxx") from None
        if not (_valid_code(low) and _valid_code(high) and low <= high):
            raise ValueError(f"response code {part!r}: codes are 0 (no response) or "
                             f"{LOWEST_CODE}-{HIGHEST_CODE}, ranges low-high")
        ranges.append((low, high))
    if not ranges:
        raise ValueError("response code: empty")
    return tuple(ranges)


def _host(authority: str) -> str:
    return authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority


@dataclass(frozen=True)
class TapQuery:
    """One subscriber's filter; empty fields match everything."""

    namespace: str = ""
    workload: str = ""
    pod: str = ""
    methods: frozenset[str] = field(default_factory=frozenset)
    codes: tuple[tuple[int, int], ...] = ()
    path: str = ""
    authority: str = ""
    direction: str = ""

    @classmethod
    def parse(cls, query_string: str) -> TapQuery:
        """From ``/tap?...``; ValueError says what is wrong (the agent answers 400)."""
        values: dict[str, str] = {}
        for key, value in parse_qsl(query_string, keep_blank_values=True):
            if key not in PARAMETERS:
                raise ValueError(f"unknown tap parameter {key!r}; known: {', '.join(PARAMETERS)}")
            values[key] = f"{values[key]},{value}" if key in ("method", "code") and \
                key in values else value
        return cls.build(**values)

    @classmethod
    def build(cls, namespace: str = "", workload: str = "", pod: str = "", method: str = "",
              code: str = "", path: str = "", authority: str = "", direction: str = "",
              ) -> TapQuery:
        """From the textual form of each parameter (the CLI's arguments)."""
        direction = direction.lower()
        if direction and direction not in _DIRECTIONS:
            raise ValueError(f"direction must be inbound or outbound, got {direction!r}")
        methods = frozenset(m.strip().upper() for m in method.split(",") if m.strip())
        return cls(namespace=namespace, workload=workload, pod=pod, methods=methods,
                   codes=parse_codes(code) if code else (), path=path,
                   authority=authority.lower(), direction=direction)

    def to_query_string(self) -> str:
        """The ``/tap`` query string that parses back into this query."""
        pairs = [("namespace", self.namespace), ("workload", self.workload),
                 ("pod", self.pod), ("method", ",".join(sorted(self.methods))),
                 ("code", ",".join(f"{lo}-{hi}" if lo != hi else str(lo)
                                   for lo, hi in self.codes)),
                 ("path", self.path), ("authority", self.authority),
                 ("direction", self.direction)]
        return urlencode([(k, v) for k, v in pairs if v])

    def matches(self, event: dict[str, Any]) -> bool:
        """True when the tap event belongs to this subscriber."""
        return self.matches_request(event["envoy"]) and self.matches_place(event)

    def matches_request(self, envoy: dict[str, Any]) -> bool:
        """The checks that need only the parsed line: cheap, run before projecting it."""
        if self.methods and str(envoy.get("method", "")).upper() not in self.methods:
            return False
        if self.codes:
            code = envoy.get("response_code")
            if not isinstance(code, int) or not any(lo <= code <= hi for lo, hi in self.codes):
                return False
        if self.path:
            path = envoy.get("path")
            if not isinstance(path, str) or not path.startswith(self.path):
                return False
        if self.authority:
            authority = str(envoy.get("authority", "")).lower()
            wanted = self.authority
            if authority != wanted and (":" in wanted or _host(authority) != wanted):
                return False
        return not self.direction or envoy.get("direction") == self.direction

    def matches_place(self, event: dict[str, Any]) -> bool:
        """Namespace, workload and pod: "to or from", see the module docstring."""
        return self._matches_place(event)

    def _matches_place(self, event: dict[str, Any]) -> bool:
        if not (self.namespace or self.workload or self.pod):
            return True
        if self.pod:
            return bool(event.get("pod") == self.pod and
                        (not self.namespace or event.get("namespace") == self.namespace))
        if ((not self.namespace or event.get("namespace") == self.namespace)
                and (not self.workload or event.get("workload") == self.workload)):
            return True
        if event.get("direction") != "outbound":
            return False
        peer = event.get("peer") or {}
        return bool(peer.get("service")
                    and (not self.namespace or peer.get("namespace") == self.namespace)
                    and (not self.workload or peer.get("service") == self.workload))
