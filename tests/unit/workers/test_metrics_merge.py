"""Merging the workers' expositions: one HELP/TYPE per family, every sample labelled."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from shipper.metrics import Metrics, SupervisorMetrics
from shipper.workers.metrics_merge import merge_exposition


def exposition(read: int, delivered: int) -> str:
    m = Metrics()
    m.records_read.labels("containers").inc(read)
    m.records_delivered.labels("es").inc(delivered)
    m.files_open.labels("containers").set(read % 7)
    return generate_latest(m.registry).decode()


def test_every_sample_gets_its_worker_label_and_each_family_is_described_once():
    text = merge_exposition({0: exposition(10, 9), 1: exposition(5, 5)}).decode()
    assert text.count("# HELP shipper_records_read_total ") == 1
    assert text.count("# TYPE shipper_records_read_total counter") == 1
    assert 'shipper_records_read_total{source="containers",worker="0"} 10.0' in text
    assert 'shipper_records_read_total{source="containers",worker="1"} 5.0' in text
    assert 'shipper_records_delivered_total{output="es",worker="1"} 5.0' in text
    for family in text_string_to_metric_families(text):  # parses back, all labelled
        for sample in family.samples:
            assert sample.labels["worker"] in ("0", "1"), sample


def test_a_missing_worker_is_left_out_and_the_supervisor_metrics_follow():
    sup = SupervisorMetrics()
    sup.worker_up.labels("0").set(1)
    sup.worker_up.labels("1").set(0)
    sup.worker_restarts.labels("1").inc()
    text = merge_exposition({0: exposition(3, 3)}, sup.registry.collect()).decode()
    assert 'worker="1"' not in text.split("# HELP shipper_worker_up")[0]
    assert 'shipper_worker_up{worker="1"} 0.0' in text
    assert 'shipper_worker_restarts_total{worker="1"} 1.0' in text


def test_no_worker_answering_still_gives_valid_text():
    assert merge_exposition({}) == b""
