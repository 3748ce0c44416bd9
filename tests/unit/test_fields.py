"""The one field list: template mappings come from it, with the right types."""

from __future__ import annotations

from shipper import fields
from shipper.filters.envoy.parse import INT_FIELDS, TEXT_FIELDS

LABELS = {"type": "flattened", "ignore_above": 8191}


def test_every_envoy_field_the_parser_emits_is_in_the_list_with_a_fitting_type() -> None:
    emitted = set(TEXT_FIELDS) | {"direction"}
    listed = {f.path.removeprefix("envoy.") for f in fields.FIELDS if f.path.startswith("envoy.")}
    assert listed == emitted
    for name in INT_FIELDS:
        assert fields.get(f"envoy.{name}").numeric, name
    assert fields.get("envoy.start_time").type == "date"


def test_the_mapping_nests_dotted_paths_and_keeps_the_fluentd_shapes() -> None:
    props = fields.mapping_properties(LABELS)
    assert props["@timestamp"] == {"type": "date"}
    assert props["log"] == {"type": "text"}
    assert props["kubernetes"]["properties"]["pod_name"] == {"type": "keyword"}
    assert props["kubernetes"]["properties"]["labels"] == LABELS
    envoy = props["envoy"]["properties"]
    assert envoy["response_code"] == {"type": "integer"}
    assert envoy["duration_ms"] == {"type": "long"}
    assert envoy["path"] == {"type": "keyword", "ignore_above": 2048,
                             "fields": {"text": {"type": "text"}}}
    assert envoy["user_agent"] == {"type": "keyword", "ignore_above": 2048}


def test_keys_of_label_maps_resolve_to_the_map() -> None:
    root = fields.labels_root("kubernetes.labels.app.kubernetes.io/name")
    assert root is not None and root.path == "kubernetes.labels"
    assert fields.labels_root("envoy.path") is None
    assert fields.get("kubernetes.labels").aggregatable
    assert not fields.get("log").aggregatable


def test_every_field_is_documented_once() -> None:
    paths = [f.path for f in fields.FIELDS]
    assert len(paths) == len(set(paths))
    assert all(f.doc.endswith(".") for f in fields.FIELDS)
