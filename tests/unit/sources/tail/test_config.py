"""Tail settings: documented defaults, impossible values rejected at load."""

from dataclasses import fields

import pytest

from shipper.sources.tail.config import TailConfig


def test_defaults_follow_the_fluentd_kubernetes_daemonset() -> None:
    cfg = TailConfig()
    assert cfg.include == ["/var/log/containers/*.log"]
    assert cfg.read_from_head is True
    assert cfg.max_line_bytes == cfg.read_chunk_bytes == 1024 * 1024
    assert cfg.rotate_wait_secs == 5 and cfg.tag_prefix == "kube"


def test_every_field_is_documented() -> None:
    assert all(f.metadata.get("doc") for f in fields(TailConfig))


@pytest.mark.parametrize("bad", [{"include": []}, {"max_line_bytes": 0},
                                 {"checkpoint_interval_secs": 0}, {"rotate_wait_secs": -1}])
def test_impossible_values_are_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        TailConfig(**bad)  # type: ignore[arg-type]
