"""Envoy / Istio access-log lines to ``envoy.*`` fields (spec §4.1-4.4). Pure and fast.

Formats understood:

* Istio's default TEXT format (1.9 and later; identical on master): 24 operators, every unset
  value printed as ``-``.
* Istio's JSON encoding (``meshConfig.accessLogEncoding: JSON``) and any JSON access log that
  has ``start_time`` plus ``response_code`` or ``upstream_cluster``: keys in any order, unset
  values ``null``.
* Plain Envoy's default text format (no Istio), the first 15 operators of Istio's.

Rules: ``-``, ``null`` and empty values are left out (absent, never the string ``"-"``);
response code, byte counts, duration and upstream service time become integers; a trailing
``;`` on the upstream cluster (Istio < 1.25 JSON, istio/istio#54219) is removed; a start time
that is not ISO-8601 is left out, because ``envoy.start_time`` is mapped as a date and one bad
value would get the whole document rejected. ``direction`` is derived from the upstream
cluster (``inbound|...`` vs ``outbound|...``, Passthrough/BlackHole clusters), falling back to
the mTLS SNI that only inbound requests carry.

Envoy does not escape quotes in text logs, so a user agent containing ``"`` breaks the strict
pattern; a second, tolerant pattern (the user agent matched lazily, anchored by the strict
fields around it) recovers such lines. Anything else returns None and the caller ships the
line untouched.

Cost: one anchored regex match plus a dict build per line; ``bench/envoy_parse.py`` measures it.
"""

from __future__ import annotations

import re
from operator import itemgetter
from typing import Any

import orjson

# Field names in the order of Istio's default TEXT format (spec §4.1 table).
TEXT_FIELDS: tuple[str, ...] = (
    "start_time", "method", "path", "protocol", "response_code", "response_flags",
    "response_code_details", "connection_termination_details",
    "upstream_transport_failure_reason", "bytes_received", "bytes_sent", "duration_ms",
    "upstream_service_time", "x_forwarded_for", "user_agent", "request_id", "authority",
    "upstream_host", "upstream_cluster", "upstream_local_address", "downstream_local_address",
    "downstream_remote_address", "requested_server_name", "route_name")
# Plain Envoy's default format: the same operators without Istio's additions.
ENVOY_FIELDS: tuple[str, ...] = (
    "start_time", "method", "path", "protocol", "response_code", "response_flags",
    "bytes_received", "bytes_sent", "duration_ms", "upstream_service_time", "x_forwarded_for",
    "user_agent", "request_id", "authority", "upstream_host")
INT_FIELDS: tuple[str, ...] = (
    "response_code", "bytes_received", "bytes_sent", "duration_ms", "upstream_service_time")
_INTS = frozenset(INT_FIELDS)
# JSON key -> field name; only duration is renamed, to say its unit.
JSON_KEYS: dict[str, str] = {name: name for name in TEXT_FIELDS}
JSON_KEYS["duration"] = JSON_KEYS.pop("duration_ms")

# Every optional operator matches ``-`` outside its group, so an unset value is a None group
# and the fields dict is built by C code (``dict(filter(...))`` over the names and groups). A
# start time that is not ISO-8601 matches as None too (left out): it is mapped as a date.
_ISO_TEXT = r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)'
_START = rf'\[(?:({_ISO_TEXT})|[^\]]*)\] '
_NUM = r'(?:-|(\d+))'
_S = r'(?:-|(\S+))'
_TAIL = rf' {_S} {_S} {_S} {_S} {_S} {_S}\Z'
_Q = r'"(?:-|([^"]*))"'


def _istio(user_agent: str) -> re.Pattern[str]:
    """Istio's TEXT format; ``user_agent`` matches the inside of the quoted user agent."""
    return re.compile(
        _START + rf'"{_S} {_S} {_S}" (\d+) {_S} {_S} {_S} {_Q} '
        rf'{_NUM} {_NUM} {_NUM} {_NUM} {_Q} "(?:-|({user_agent}))" {_Q} {_Q} {_Q}' + _TAIL)


# Only the user agent may hold a quote (clients send anything; Envoy does not escape it). One
# lazy group keeps the tolerant pattern linear-ish even on long lines that match neither.
_ISTIO_STRICT = _istio(r'[^"]*')
_ISTIO_TOLERANT = _istio(r'.*?')
_ENVOY_DEFAULT = re.compile(
    _START + rf'"{_S} {_S} {_S}" (\d+) {_S} ' + rf'{_NUM} {_NUM} {_NUM} {_NUM} '
    rf'{_Q} "(?:-|(.*?))" {_Q} {_Q} {_Q}\Z')
_ISO = re.compile(_ISO_TEXT + r'\Z')
_HAS_VALUE = itemgetter(1)  # a (name, value) pair whose value is neither None nor empty

_OUTBOUND_CLUSTERS = frozenset({"PassthroughCluster", "BlackHoleCluster"})


def direction(cluster: str | None, sni: str | None) -> str | None:
    """``inbound`` / ``outbound`` from the upstream cluster (spec §4.4), else from the SNI."""
    if cluster:
        if cluster.startswith("outbound|") or cluster in _OUTBOUND_CLUSTERS:
            return "outbound"
        if cluster.startswith(("inbound|", "InboundPassthroughCluster")):
            return "inbound"
    if sni and sni.startswith("outbound_."):
        return "inbound"  # the client's mTLS SNI arrives on the server side only
    return None


def _from_groups(names: tuple[str, ...], groups: tuple[str | None, ...]) -> dict[str, Any]:
    """Fields of a TEXT match: unset/empty left out, numbers converted, direction added."""
    out: dict[str, Any] = dict(filter(_HAS_VALUE, zip(names, groups, strict=True)))
    get = out.get
    for name in INT_FIELDS:
        value = get(name)
        if value is not None:
            out[name] = int(value)  # the patterns only let digits through here
    way = direction(get("upstream_cluster"), get("requested_server_name"))
    if way is not None:
        out["direction"] = way
    return out


def parse_text(line: str) -> dict[str, Any] | None:
    """Fields of one TEXT access-log line, or None if it is not one."""
    m = _ISTIO_STRICT.match(line) or _ISTIO_TOLERANT.match(line)
    if m is not None:
        return _from_groups(TEXT_FIELDS, m.groups())
    m = _ENVOY_DEFAULT.match(line)
    if m is not None:
        return _from_groups(ENVOY_FIELDS, m.groups())
    return None


def _as_int(value: Any) -> int | None:
    if type(value) is int:
        return value
    if isinstance(value, str) and value.isdigit() and value.isascii():
        return int(value)
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return None


def parse_json(line: str) -> dict[str, Any] | None:
    """Fields of one JSON access-log line, or None if it is not one."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if (type(obj) is not dict or "start_time" not in obj
            or ("response_code" not in obj and "upstream_cluster" not in obj)):
        return None
    out: dict[str, Any] = {}
    get = obj.get
    for key, name in JSON_KEYS.items():
        value = get(key)
        if value is None or value == "-" or value == "":
            continue
        if name in _INTS:
            if type(value) is not int:
                value = _as_int(value)
                if value is None:
                    continue  # a custom format put text here; the mapping wants a number
        elif type(value) is not str:
            value = orjson.dumps(value).decode() if isinstance(value, dict | list) else str(value)
        out[name] = value
    cluster = out.get("upstream_cluster")
    if cluster is not None and cluster.endswith(";"):
        cluster = cluster.rstrip(";")
        if cluster:
            out["upstream_cluster"] = cluster
        else:
            del out["upstream_cluster"]
            cluster = None
    start = out.get("start_time")
    if start is not None and _ISO.match(start) is None:
        del out["start_time"]
    way = direction(cluster, out.get("requested_server_name"))
    if way is not None:
        out["direction"] = way
    return out


def parse_line(line: str) -> dict[str, Any] | None:
    """``envoy.*`` fields of an access-log line in any supported encoding, or None."""
    if not line:
        return None
    first = line[0]
    if first == "[":
        return parse_text(line)
    if first == "{":
        return parse_json(line)
    return None


def parse_for_registry(line: str) -> dict[str, Any] | None:
    """Parser-registry form (``shipper.io/parser: envoy``): the fields under ``envoy``."""
    fields = parse_line(line)
    return None if fields is None else {"envoy": fields}
