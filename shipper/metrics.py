"""Every metric shipper exports, in one place, on a registry owned by the running agent.

No module-level registry: tests create as many agents as they like without collisions.
Labels are bounded (source, output, reason, status class); never per pod or per file.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """The agent's metrics; components receive this object and update it."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.records_read = Counter(
            "shipper_records_read", "Records read by a source", ["source"], registry=r)
        self.bytes_read = Counter(
            "shipper_bytes_read", "Bytes read by a source", ["source"], registry=r)
        self.records_flagged = Counter(
            "shipper_records_flagged", "Records shipped with a problem flag", ["source", "flag"],
            registry=r)
        self.files_open = Gauge("shipper_files_open", "Files a tail source holds open", ["source"],
                                registry=r)
        self.files_rotated = Counter(
            "shipper_files_rotated", "Rotations and truncations seen", ["source", "kind"],
            registry=r)
        self.lost_bytes = Counter(
            "shipper_lost_bytes", "Bytes that could not be read (rotated/deleted first)",
            ["source", "reason"], registry=r)
        self.records_delivered = Counter(
            "shipper_records_delivered", "Records an output accepted", ["output"], registry=r)
        self.records_duplicate = Counter(
            "shipper_records_duplicate", "Records the output already had (409 on create)",
            ["output"], registry=r)
        self.records_retried = Counter(
            "shipper_records_retried", "Records sent again after a retryable failure",
            ["output", "reason"], registry=r)
        self.records_dead_lettered = Counter(
            "shipper_records_dead_lettered",
            "Records rejected and written to the dead-letter store",
            ["output", "reason"], registry=r)
        self.records_dropped = Counter(
            "shipper_records_dropped", "Records dropped on purpose (policy), never silently",
            ["output", "reason"], registry=r)
        self.requests = Counter(
            "shipper_output_requests", "Output requests by outcome", ["output", "status"],
            registry=r)
        self.buffer_bytes = Gauge("shipper_buffer_bytes", "Bytes held in an output buffer",
                                  ["output"], registry=r)
        self.buffer_chunks = Gauge("shipper_buffer_chunks", "Chunks held in an output buffer",
                                   ["output"], registry=r)
        self.oldest_unacked_age = Gauge(
            "shipper_oldest_unacked_age_seconds", "Age of the oldest undelivered chunk",
            ["output"], registry=r)
        self.delivery_latency = Histogram(
            "shipper_delivery_latency_seconds", "From buffer entry to settlement of a chunk",
            ["output"], registry=r,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
        self.last_success = Gauge(
            "shipper_output_last_success_timestamp_seconds", "Unix time of the last delivery",
            ["output"], registry=r)
