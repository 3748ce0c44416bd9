"""Payload bytes that wait in a buffer: sized to their content.

orjson (3.12 and later) returns ``bytes`` whose allocation is rounded up to a power of two
with a 4 KiB floor and never shrunk: a 1.7 KB document holds 8-16 KiB. ``len()`` and the
buffers' byte accounting see 1.7 KB, so a buffer limited to 256 MiB of payloads held over
a gigabyte of memory (measured with the ``null`` output). Every payload that is kept (in a
buffer, in flight, in a disk buffer awaiting fsync) is therefore either built by a join or
concatenation, which allocate exactly, or copied once with ``right_sized``.
"""

from __future__ import annotations

import bisect
import itertools
import json
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from shipper.record import Record


def right_sized(data: bytes) -> bytes:
    """A copy of ``data`` whose allocation matches its length (about 0.2 µs for 2 KB)."""
    return bytes(memoryview(data))


def running_totals(sizes: Iterable[int]) -> list[int]:
    """``totals[i]`` is the sum of the first ``i`` sizes: built in C, so how many payloads fit
    a budget is one ``bisect`` (``run_end``) instead of a Python loop over them."""
    return list(itertools.accumulate(sizes, initial=0))


def run_end(totals: list[int], start: int, stop: int, budget: int) -> int:
    """The largest ``end`` (up to ``stop``) whose items ``start:end`` total at most ``budget``;
    ``start`` when not even the first fits, ``start - 1`` when the budget is negative."""
    return bisect.bisect_right(totals, totals[start] + budget, start, stop + 1) - 1


def spans_within(sizes: Sequence[int], budget: int, separator: int = 0) -> list[tuple[int, int]]:
    """Consecutive ``(start, end)`` runs of items whose total, with ``separator`` bytes between
    neighbours, is at most ``budget``; an item larger than the budget makes a run of its own."""
    totals = running_totals([n + separator for n in sizes] if separator else sizes)
    spans: list[tuple[int, int]] = []
    count = len(sizes)
    start = 0
    while start < count:
        end = max(run_end(totals, start, count, budget + separator), start + 1)
        spans.append((start, end))
        start = end
    return spans


def dumps_lenient(doc: Any, option: int = 0) -> bytes:
    """``orjson.dumps``, and for what orjson refuses (non-str keys, ints over 64 bits, lone
    surrogates) a document with the odd values turned into strings: a record that cannot be
    represented exactly is still shipped rather than failing its whole batch."""
    try:
        return orjson.dumps(doc, option=option)
    except (TypeError, orjson.JSONEncodeError):
        pass
    try:
        return orjson.dumps(doc, default=str, option=option | orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        text = json.dumps(doc, default=str, ensure_ascii=True, separators=(",", ":"))
        return (text + "\n" if option & orjson.OPT_APPEND_NEWLINE else text).encode("ascii")


class BodySerializer:
    """``dumps_lenient`` of the record bodies of one batch, each shared map serialized once.

    The metadata filter puts one ``kubernetes`` dict into every record of a pod, and that map
    is about half of an enriched document. The first time a batch meets a map it is
    serialized into an ``orjson.Fragment``; for each body the map is swapped for its fragment
    during the one ``orjson.dumps`` call and put back before anything else runs. Entries are
    keyed by identity and hold the map, so an id cannot be reused while the serializer lives;
    make one per batch (nothing carries over), and the output is exactly what serializing the
    body gives.
    """

    __slots__ = ("_fragments", "_option")

    def __init__(self, option: int = 0) -> None:
        self._fragments: dict[int, tuple[dict[str, Any], orjson.Fragment | None]] = {}
        self._option = option

    def dumps(self, body: dict[str, Any]) -> bytes:
        k8s = body.get("kubernetes")
        if type(k8s) is dict:
            known = self._fragments.get(id(k8s))
            fragment = (known or self._serialize(k8s))[1]
            if fragment is not None:
                body["kubernetes"] = fragment
                try:
                    return orjson.dumps(body, option=self._option)
                except (TypeError, orjson.JSONEncodeError):
                    pass  # the fallback below works on the body as it was
                finally:
                    body["kubernetes"] = k8s
        return dumps_lenient(body, self._option)

    def _serialize(self, k8s: dict[str, Any]) -> tuple[dict[str, Any], orjson.Fragment | None]:
        try:
            fragment: orjson.Fragment | None = orjson.Fragment(orjson.dumps(k8s))
        except (TypeError, orjson.JSONEncodeError):
            fragment = None  # the whole body takes the lenient path
        entry = self._fragments[id(k8s)] = (k8s, fragment)
        return entry


def json_lines(records: Sequence[Record], newline: bool = False) -> list[bytes]:
    """Each record body as one JSON document (with a trailing LF when ``newline``), sized
    to keep. Values JSON cannot hold (non-str keys, sets, ...) become strings rather than
    failing the batch."""
    dumps = BodySerializer(orjson.OPT_APPEND_NEWLINE if newline else 0).dumps
    return [right_sized(dumps(record.body)) for record in records]


def describe_json(payload: bytes) -> dict[str, Any]:
    """A JSON-document payload back as its record, for the dead-letter store."""
    try:
        return {"record": orjson.loads(payload)}
    except orjson.JSONDecodeError:
        return {"raw": payload.decode("utf-8", "replace")}
