"""Serializing record bodies: exactly orjson's output, shared maps once, odd values kept."""

from __future__ import annotations

import json
from typing import Any

import orjson

from shipper.payloads import (
    BodySerializer,
    dumps_lenient,
    json_lines,
    run_end,
    running_totals,
    spans_within,
)
from shipper.record import Record


def test_bodies_sharing_a_map_serialize_exactly_as_orjson_and_are_left_as_they_were() -> None:
    shared = {"pod_name": "web-1", "labels": {"app": "web"}, "namespace_name": "shop"}
    other = {"pod_name": "db-0"}
    bodies: list[dict[str, Any]] = [
        {"log": f"line {i}", "kubernetes": shared if i % 2 else other, "n": i} for i in range(6)]
    bodies.append({"log": "no map"})
    bodies.append({"log": "not a dict", "kubernetes": "text"})
    before = [dict(b) for b in bodies]
    serialize = BodySerializer().dumps
    assert [serialize(b) for b in bodies] == [orjson.dumps(b) for b in before]
    assert bodies == before
    assert all(b["kubernetes"] is (shared if i % 2 else other) for i, b in enumerate(bodies[:6]))


def test_a_newline_option_applies_to_every_body() -> None:
    serialize = BodySerializer(orjson.OPT_APPEND_NEWLINE).dumps
    body = {"log": "x", "kubernetes": {"pod_name": "p"}}
    assert serialize(body) == serialize(body) == b'{"log":"x","kubernetes":{"pod_name":"p"}}\n'


def test_odd_values_become_strings_instead_of_failing() -> None:
    odd_map = {1: "numeric key"}
    body = {"log": "x", "kubernetes": odd_map, "big": 2**70}
    out = BodySerializer().dumps(body)
    assert json.loads(out) == {"log": "x", "kubernetes": {"1": "numeric key"}, "big": 2**70}
    assert body["kubernetes"] is odd_map
    # A refusal outside the map (a set) with a map orjson takes: the map is put back first.
    body2 = {"kubernetes": {"pod_name": "p"}, "tags": {"a"}}
    assert json.loads(BodySerializer().dumps(body2)) == {"kubernetes": {"pod_name": "p"},
                                                         "tags": "{'a'}"}
    assert type(body2["kubernetes"]) is dict


def test_dumps_lenient_keeps_the_newline_on_every_path() -> None:
    assert dumps_lenient({"a": 1}, orjson.OPT_APPEND_NEWLINE) == b'{"a":1}\n'
    assert dumps_lenient({2: "b"}, orjson.OPT_APPEND_NEWLINE) == b'{"2":"b"}\n'
    assert dumps_lenient({"c": 2**70}, orjson.OPT_APPEND_NEWLINE) == b'{"c":%d}\n' % 2**70


def test_json_lines_of_records() -> None:
    k8s = {"pod_name": "p"}
    records = [Record({"log": str(i), "kubernetes": k8s}, i, "t") for i in range(3)]
    assert json_lines(records, newline=True) == [
        b'{"log":"%d","kubernetes":{"pod_name":"p"}}\n' % i for i in range(3)]


def test_run_end_finds_the_longest_run_within_a_budget() -> None:
    totals = running_totals([10, 10, 10, 5])
    assert totals == [0, 10, 20, 30, 35]
    assert run_end(totals, 0, 4, 25) == 2
    assert run_end(totals, 1, 4, 25) == 4  # 10 + 10 + 5
    assert run_end(totals, 0, 4, 100) == 4
    assert run_end(totals, 2, 3, 100) == 3  # never past ``stop``
    assert run_end(totals, 0, 4, 5) == 0  # not even the first fits
    assert run_end(totals, 1, 4, -1) == 0  # over budget already


def test_spans_within_count_separators_and_let_an_oversized_item_stand_alone() -> None:
    assert spans_within([10, 10, 10, 10, 10], 32, separator=1) == [(0, 3), (3, 5)]
    assert spans_within([10, 10, 10, 10, 10], 31, separator=1) == [(0, 2), (2, 4), (4, 5)]
    assert spans_within([10, 10, 10], 30) == [(0, 3)]
    assert spans_within([5, 50, 5], 20) == [(0, 1), (1, 2), (2, 3)]
    assert spans_within([], 10) == []
