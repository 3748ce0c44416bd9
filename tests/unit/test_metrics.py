"""Label values declared up front must be the ones the code really uses."""

from __future__ import annotations

from shipper.metrics import CHECKPOINT_OPS, DEAD_LETTER_OPS, LOST_BYTES_REASONS, Metrics
from shipper.sources.tail import lineage


def test_lost_bytes_reasons_are_the_tail_sources_reasons() -> None:
    assert set(LOST_BYTES_REASONS) == {lineage.COMPRESSED, lineage.DELETED, lineage.TRUNCATED}


def test_a_declared_tail_source_exports_every_loss_reason_at_zero() -> None:
    m = Metrics()
    m.declare_tail_source("containers")
    for reason in LOST_BYTES_REASONS:
        assert m.registry.get_sample_value(
            "shipper_lost_bytes_total", {"source": "containers", "reason": reason}) == 0


def test_a_disk_buffered_output_exports_its_storage_errors_at_zero() -> None:
    m = Metrics()
    m.declare_output("es", disk_buffer=True)
    for op in ("write", "read", "delete", "fsync"):
        assert m.registry.get_sample_value(
            "shipper_buffer_storage_errors_total", {"output": "es", "op": op}) == 0


def test_every_output_exports_its_dead_letter_storage_errors_and_duplicates_at_zero() -> None:
    m = Metrics()
    m.declare_output("es")
    for op in DEAD_LETTER_OPS:
        assert m.registry.get_sample_value(
            "shipper_storage_errors_total",
            {"component": "dead_letter", "output": "es", "op": op}) == 0
    assert m.registry.get_sample_value(
        "shipper_records_dead_lettered_duplicate_total", {"output": "es"}) == 0


def test_a_declared_tail_source_exports_its_checkpoint_errors_at_zero() -> None:
    m = Metrics()
    m.declare_tail_source("containers")
    for op in CHECKPOINT_OPS:
        assert m.registry.get_sample_value(
            "shipper_checkpoint_storage_errors_total", {"source": "containers", "op": op}) == 0
