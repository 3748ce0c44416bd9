"""KQL text from the saved objects becomes the query Kibana would send."""

from __future__ import annotations

from typing import Any

import pytest

from shipper.dashboards.kql import KqlError, fields, to_dsl

CASES: list[tuple[str, dict[str, Any]]] = [
    ("", {"match_all": {}}),
    ("   ", {"match_all": {}}),
    ('kubernetes.namespace_name : "istio-system"',
     {"match_phrase": {"kubernetes.namespace_name": "istio-system"}}),
    ("kubernetes.container_name:discovery", {"match": {"kubernetes.container_name": "discovery"}}),
    ("envoy.response_code : *", {"exists": {"field": "envoy.response_code"}}),
    ("envoy.response_code >= 500", {"range": {"envoy.response_code": {"gte": 500}}}),
    ("envoy.duration_ms < 0.5", {"range": {"envoy.duration_ms": {"lt": 0.5}}}),
    ('kubernetes.container_name : "mixer" and kubernetes.labels.istio-mixer-type : "telemetry"',
     {"bool": {"filter": [{"match_phrase": {"kubernetes.container_name": "mixer"}},
                          {"match_phrase": {"kubernetes.labels.istio-mixer-type": "telemetry"}}]}}),
    ('a : "x" OR b : "y" or c : *',
     {"bool": {"should": [{"match_phrase": {"a": "x"}}, {"match_phrase": {"b": "y"}},
                          {"exists": {"field": "c"}}], "minimum_should_match": 1}}),
    ("not a : * and (b > 1 or c <= 2)",
     {"bool": {"filter": [
         {"bool": {"must_not": [{"exists": {"field": "a"}}]}},
         {"bool": {"should": [{"range": {"b": {"gt": 1}}}, {"range": {"c": {"lte": 2}}}],
                   "minimum_should_match": 1}}]}}),
    ('msg : "say \\"hi\\""', {"match_phrase": {"msg": 'say "hi"'}}),
]


@pytest.mark.parametrize(("query", "expected"), CASES, ids=[c[0] or "empty" for c in CASES])
def test_kql_translates_like_kibana(query: str, expected: dict[str, Any]) -> None:
    assert to_dsl(query) == expected


def test_and_binds_tighter_than_or() -> None:
    assert to_dsl("a : 1 or b : 2 and c : 3") == {"bool": {"should": [
        {"match": {"a": "1"}},
        {"bool": {"filter": [{"match": {"b": "2"}}, {"match": {"c": "3"}}]}}],
        "minimum_should_match": 1}}


def test_fields_are_listed_once_in_order() -> None:
    assert fields("b : 1 and a : * or b >= 3") == ["b", "a"]


@pytest.mark.parametrize("query", [
    "envoy",  # free text
    "a : ", "a : (x or y)", "a : fo*", "a >= many", "(a : 1", "a : 1)", "a : 1 b : 2",
    ": x", "and", "a = 1",
])
def test_anything_outside_the_subset_is_refused(query: str) -> None:
    with pytest.raises(KqlError):
        to_dsl(query)
