"""Adding the fields parsed from a log line to its record, safely (Fluent Bit ``Merge_Log``).

Shared by the ``json_merge`` filter and by the Kubernetes filter's ``shipper.io/parser`` pod
annotation, so both follow the same rules:

* Parsed keys go to the top level of the record, or under ``merge_key`` when set.
* Existing fields are never overwritten. A parsed key that names a reserved field (``log``,
  ``stream``, ``time``, ``@timestamp``, ``tag``, ``kubernetes``, ``docker``), a field already in
  the record, an Elasticsearch metadata field (a top-level key starting with ``_``) or a dotted
  path into a reserved field (``kubernetes.pod_name``) is stored as ``conflict_prefix + key``.
  If that name is taken too, the value is not merged; ``log`` then stays even with
  ``keep_log: false``, so the line is never lost.
* Caps bound what one line can do to the index mapping: more than ``max_keys`` keys (counted
  at every level) and nothing is merged (the line stays a string in ``log``); objects nested
  deeper than ``max_depth`` are kept as JSON strings.

Every outcome is counted by the caller from ``Merger.counts``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from shipper.config import checks

RESERVED_FIELDS: tuple[str, ...] = (
    "log", "stream", "time", "@timestamp", "tag", "kubernetes", "docker")

MERGED = "merged"
TOO_MANY_KEYS = "too_many_keys"
DEPTH_CAPPED = "depth_capped"
KEY_CONFLICT = "key_conflict"
NOT_MERGED_CONFLICT = "conflict_not_merged"


def _check_field_name(value: str | None) -> str | None:
    if value is None:
        return None
    if not value or value.startswith("_") or value.strip() != value:
        return "must be a non-empty field name that does not start with '_'"
    return None


def _check_prefix(value: str) -> str | None:
    if not value or value.startswith("_"):
        return "must be non-empty and not start with '_'"
    return None


def key_name_field() -> Any:
    return field(default="log", metadata={
        "doc": "Record field holding the text to parse.",
        "check": _check_field_name})


def merge_key_field() -> Any:
    return field(default=None, metadata={
        "doc": "Put the parsed fields under this key instead of the top level of the record "
               "(Fluent Bit Merge_Log_Key). null: top level.",
        "check": _check_field_name})


def keep_log_field() -> Any:
    return field(default=True, metadata={
        "doc": "Keep the original text after a successful merge (Fluent Bit Keep_Log). It is "
               "always kept when a parsed value could not be merged."})


def max_keys_field() -> Any:
    return field(default=100, metadata={
        "doc": "Most keys (counted at every nesting level) one line may add; a line with more "
               "is not merged and stays a string, so one chatty app cannot blow the index's "
               "field limit.",
        "check": checks.positive})


def max_depth_field() -> Any:
    return field(default=5, metadata={
        "doc": "Deepest object nesting merged; deeper objects are kept as JSON strings.",
        "check": checks.positive})


def conflict_prefix_field() -> Any:
    return field(default="parsed_", metadata={
        "doc": "A parsed key that would overwrite a reserved or existing field is stored "
               "under this prefix instead (time becomes parsed_time).",
        "check": _check_prefix})


def reserved_fields_field() -> Any:
    return field(default=RESERVED_FIELDS, metadata={
        "doc": "Fields a parsed key never overwrites (besides any field already in the "
               "record and top-level names starting with '_')."})


@dataclass(frozen=True)
class MergeRules:
    """How fields parsed from a log line are added to the record."""

    key_name: str = key_name_field()
    merge_key: str | None = merge_key_field()
    keep_log: bool = keep_log_field()
    max_keys: int = max_keys_field()
    max_depth: int = max_depth_field()
    conflict_prefix: str = conflict_prefix_field()
    reserved_fields: tuple[str, ...] = reserved_fields_field()

    def validate(self) -> list[str]:
        problems = []
        if self.merge_key is not None and self.merge_key in self.reserved_fields:
            problems.append(f"merge_key: {self.merge_key!r} is a reserved field")
        if self.merge_key is not None and self.merge_key == self.key_name:
            problems.append("merge_key: must differ from key_name")
        return problems


class Merger:
    """Applies one set of rules; keeps per-outcome counts for the caller to publish."""

    def __init__(self, rules: MergeRules) -> None:
        self.rules = rules
        self.key_name = rules.key_name
        self._reserved = frozenset((*rules.reserved_fields, rules.key_name))
        self._prefix = rules.conflict_prefix
        self.counts: dict[str, int] = {}

    def take_counts(self) -> dict[str, int]:
        """Counts since the last call (and reset them)."""
        counts, self.counts = self.counts, {}
        return counts

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def merge(self, body: dict[str, Any], parsed: dict[str, Any]) -> bool:
        """Add ``parsed`` to ``body`` following the rules; False if nothing was merged."""
        rules = self.rules
        keys, deep = _scan(parsed, 1, rules.max_depth, rules.max_keys)
        if keys > rules.max_keys:
            self._count(TOO_MANY_KEYS)
            return False
        if deep:
            parsed = _capped(parsed, 1, rules.max_depth)
            self._count(DEPTH_CAPPED)
        lost = False
        renamed = False
        if rules.merge_key is not None:
            target = rules.merge_key
            if target in body:
                target = self._prefix + target
                renamed = True
            if target in body:
                lost = True
            else:
                body[target] = parsed
        else:
            reserved = self._reserved
            for key, value in parsed.items():
                if key in body or key in reserved or _unsafe_top_level(key, reserved):
                    alt = self._prefix + key
                    if alt in body or alt in reserved:
                        lost = True
                        continue
                    body[alt] = value
                    renamed = True
                else:
                    body[key] = value
        if renamed:
            self._count(KEY_CONFLICT)
        if lost:
            self._count(NOT_MERGED_CONFLICT)
        elif not rules.keep_log:
            body.pop(self.key_name, None)
        self._count(MERGED)
        return True


def _unsafe_top_level(key: str, reserved: frozenset[str]) -> bool:
    """Names Elasticsearch would reject or read as a path into a reserved field."""
    if not key or key[0] == "_":
        return True
    if "." in key:
        return key.split(".", 1)[0] in reserved or not key.strip(". ")
    return key[0] == " " and not key.strip()


def _scan(obj: dict[str, Any], depth: int, max_depth: int, budget: int) -> tuple[int, bool]:
    """(keys at every level up to ``max_depth``, whether anything is nested deeper).

    Stops counting once ``budget`` is exceeded: the caller only needs to know that. Flat
    objects (the common case) cost one type check per value.
    """
    keys = len(obj)
    deep = False
    for value in obj.values():
        kind = type(value)
        if kind is not dict and kind is not list:
            continue
        if keys > budget:
            break
        for child in ((value,) if kind is dict else value):
            if type(child) is not dict:
                continue
            if depth >= max_depth:
                deep = True
                break
            k, d = _scan(child, depth + 1, max_depth, budget - keys)
            keys += k
            deep = deep or d
    return keys, deep


def _capped(obj: dict[str, Any], depth: int, max_depth: int) -> dict[str, Any]:
    """A copy of ``obj`` where values that would nest deeper than ``max_depth`` are strings."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if type(value) is dict:
            out[key] = (orjson.dumps(value, default=str).decode() if depth >= max_depth
                        else _capped(value, depth + 1, max_depth))
        elif type(value) is list and any(type(v) is dict for v in value):
            out[key] = (orjson.dumps(value, default=str).decode() if depth >= max_depth
                        else [_capped(v, depth + 1, max_depth) if type(v) is dict else v
                              for v in value])
        else:
            out[key] = value
    return out
