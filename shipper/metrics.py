"""Every metric shipper exports, in one place, on a registry owned by the running agent.

No module-level registry: tests create as many agents as they like without collisions.
Labels are bounded (source, output, reason, status class); never per pod or per file.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shipper import __version__
from shipper.speedups import IMPLEMENTATION

# Label values known before anything happens. Their series are exported at zero from the start
# (``declare_output``, ``declare_tail_source``), so that ``increase(...) > 0`` alerts see the
# first burst: a series that appears with its first event has no earlier sample to compare.
RETRY_REASONS = ("connection", "tls", "429", "4xx", "5xx")
REQUEST_STATUSES = ("ok", "partial", "connection_error", "tls_error",
                    "401", "403", "429", "500", "502", "503", "504")
DROP_REASONS = ("buffer_full", "too_large", "buffer_corrupt", "dead_letter_full")
DISK_BUFFER_OPS = ("write", "read", "delete", "fsync")
START_RESULTS = ("ok", "unavailable", "credentials_rejected", "tls_rejected", "misconfigured")
LOST_BYTES_REASONS = ("compressed_unread", "deleted_unread", "truncated_unread")
DEAD_LETTER_OPS = ("mkdir", "usage", "open", "write", "fsync", "fsync_dir")
CHECKPOINT_OPS = ("mkdir", "create", "write", "fsync", "rename", "fsync_dir")


class Metrics:
    """The agent's metrics; components receive this object and update it."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        # Constant 1; its labels say which build runs (``implementation``: compiled or python,
        # see shipper.speedups).
        self.build_info = Gauge("shipper_build_info", "Version and per-line implementation "
                                "of the running agent (always 1)",
                                ["version", "implementation"], registry=r)
        self.build_info.labels(__version__, IMPLEMENTATION).set(1)
        self.records_read = Counter(
            "shipper_records_read", "Records read by a source", ["source"], registry=r)
        self.bytes_read = Counter(
            "shipper_bytes_read", "Bytes read by a source", ["source"], registry=r)
        self.records_flagged = Counter(
            "shipper_records_flagged", "Records shipped with a problem flag", ["source", "flag"],
            registry=r)
        self.files_open = Gauge("shipper_files_open", "Files a tail source holds open", ["source"],
                                registry=r)
        self.files_waiting = Gauge(
            "shipper_files_waiting", "Files with unread data waiting for a descriptor "
            "(max_open_files reached)", ["source"], registry=r)
        self.files_unreadable = Gauge(
            "shipper_files_unreadable", "Files found but failing to open (permissions, I/O "
            "errors); retried, not counted in shipper_files_waiting", ["source"], registry=r)
        self.multiline_hints_unknown = Counter(
            "shipper_multiline_hints_unknown", "Files of pods whose multiline annotation names "
            "no known preset (the source's own rules are used)", ["source"], registry=r)
        self.tail_include_dirs_missing = Gauge(
            "shipper_tail_include_dirs_missing", "Include directories (the part of an include "
            "pattern before any wildcard) that do not exist now", ["source"], registry=r)
        self.tail_include_dirs_unreadable = Gauge(
            "shipper_tail_include_dirs_unreadable", "Include directories that exist but the "
            "agent may not list (permissions, SELinux): their files are not found", ["source"],
            registry=r)
        self.files_deleted_open = Gauge(
            "shipper_files_deleted_open", "Deleted files a tail source still holds open to "
            "read them to their end", ["source"], registry=r)
        self.files_rotated = Counter(
            "shipper_files_rotated", "Rotations and truncations seen", ["source", "kind"],
            registry=r)
        self.lost_bytes = Counter(
            "shipper_lost_bytes", "Bytes that could not be read (rotated/deleted first)",
            ["source", "reason"], registry=r)
        self.unconfirmed_bytes = Counter(
            "shipper_unconfirmed_bytes", "Bytes sent but never acknowledged before a "
            "restart whose file could not be read again (maybe delivered, maybe not)",
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
        self.records_dead_lettered_duplicate = Counter(
            "shipper_records_dead_lettered_duplicate",
            "Rejected records whose document id the dead-letter store already held (read "
            "again after a restart); not written twice", ["output"], registry=r)
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
        self.buffer_corrupt_records = Counter(
            "shipper_buffer_corrupt_records",
            "Damaged disk buffer records, quarantined (a lower bound when a segment was cut "
            "inside a record at start-up: the log says 'at least')",
            ["output"], registry=r)
        self.buffer_storage_errors = Counter(
            "shipper_buffer_storage_errors",
            "Disk buffer I/O failures (ENOSPC, EIO...); inputs pause until they clear",
            ["output", "op"], registry=r)
        self.storage_errors = Counter(
            "shipper_storage_errors",
            "Failures to write persistent state other than the disk buffer (component: "
            "dead_letter...), by step; retried with backoff, nothing is settled meanwhile",
            ["component", "output", "op"], registry=r)
        self.checkpoint_storage_errors = Counter(
            "shipper_checkpoint_storage_errors",
            "Failed writes of a tail source's positions file (ENOSPC, EIO...), by step; "
            "retried at the next checkpoint, the source is not ready meanwhile",
            ["source", "op"], registry=r)
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
        self.filter_records = Counter(
            "shipper_filter_records",
            "Records a filter handled, by result (enriched, not_found, merged, too_many_keys...)",
            ["filter", "result"], registry=r)
        self.kubernetes_api_requests = Counter(
            "shipper_kubernetes_api_requests",
            "Kubernetes API list/watch requests by resource and outcome (ok, error, gone)",
            ["filter", "resource", "outcome"], registry=r)
        self.kubernetes_cached_pods = Gauge(
            "shipper_kubernetes_cached_pods",
            "Pods in the metadata cache (state: live, or deleted and kept for late lines)",
            ["filter", "state"], registry=r)
        self.kubernetes_watch_up = Gauge(
            "shipper_kubernetes_watch_up",
            "1 while the list+watch of a resource is in sync with the API server, else 0",
            ["filter", "resource"], registry=r)
        self.records_truncated = Counter(
            "shipper_records_truncated",
            "Records whose message an output cut to fit its line limit (flagged truncated)",
            ["output"], registry=r)
        self.logzio_lines = Counter(
            "shipper_logzio_lines",
            "Lines as the Logz.io listener reported them: every line of a 200 is successful, "
            "a 400 adds its successful/malformed/oversized/empty counts", ["output", "kind"],
            registry=r)
        self.forward_connections = Gauge(
            "shipper_forward_connections", "Open connections of a forward source", ["source"],
            registry=r)
        self.forward_connections_closed = Counter(
            "shipper_forward_connections_closed",
            "Forward connections the server closed, by reason (malformed, frame_too_large, "
            "auth_failed, idle, limit...)", ["source", "reason"], registry=r)
        self.forward_events_skipped = Counter(
            "shipper_forward_events_skipped",
            "Forward events dropped as invalid (no map record, bad time, metrics/traces signal)",
            ["source", "reason"], registry=r)
        self.forward_acks = Counter(
            "shipper_forward_acks", "Acks a forward source sent once the events were safe",
            ["source"], registry=r)
        self.forward_server_up = Gauge(
            "shipper_forward_server_up",
            "1 while a forward output considers the server available, else 0",
            ["output", "server"], registry=r)
        self.forward_connections_accepted = Counter(
            "shipper_forward_connections_accepted",
            "Connections a forward source accepted (the gauge misses short-lived ones)",
            ["source"], registry=r)
        self.kubernetes_watch_restarts = Counter(
            "shipper_kubernetes_watch_restarts",
            "Watches of a resource that ended and were started again, by reason (expired: "
            "410 Gone, error, closed by the server)", ["filter", "resource", "reason"],
            registry=r)
        self.output_start_attempts = Counter(
            "shipper_output_start_attempts",
            "Attempts to start an output (connect, detect the server, install the template), "
            "by result: ok, unavailable, credentials_rejected, tls_rejected, misconfigured; "
            "retried with backoff until one is ok", ["output", "result"], registry=r)
        self.output_ready = Gauge(
            "shipper_output_ready",
            "1 while an output is ready (see /readyz), 0 while stalled or refused",
            ["output"], registry=r)
        self.tap_subscribers = Gauge(
            "shipper_tap_subscribers", "Open /tap streams", registry=r)
        self.tap_records = Counter(
            "shipper_tap_records",
            "Access-log records for /tap streams: sent, or dropped for a subscriber that "
            "reads too slowly (shipping is never slowed)", ["result"], registry=r)

    def declare_output(self, output: str, *, disk_buffer: bool = False,
                       dead_letter_reasons: Iterable[str] = ()) -> None:
        """Export an output's counters at zero for every label value known up front."""
        self.records_delivered.labels(output)
        self.records_duplicate.labels(output)
        for reason in RETRY_REASONS:
            self.records_retried.labels(output, reason)
        for status in REQUEST_STATUSES:
            self.requests.labels(output, status)
        for reason in DROP_REASONS:
            self.records_dropped.labels(output, reason)
        for reason in (*dead_letter_reasons, "rejected", "unknown"):
            self.records_dead_lettered.labels(output, reason)
        self.records_dead_lettered_duplicate.labels(output)
        for op in DEAD_LETTER_OPS:  # every output shares the agent's dead-letter store
            self.storage_errors.labels("dead_letter", output, op)
        for result in START_RESULTS:
            self.output_start_attempts.labels(output, result)
        if disk_buffer:
            self.buffer_corrupt_records.labels(output)
            for op in DISK_BUFFER_OPS:
                self.buffer_storage_errors.labels(output, op)

    def declare_tail_source(self, source: str) -> None:
        """Export a tail source's loss and checkpoint-failure counters at zero."""
        for reason in LOST_BYTES_REASONS:
            self.lost_bytes.labels(source, reason)
            self.unconfirmed_bytes.labels(source, reason)
        for op in CHECKPOINT_OPS:
            self.checkpoint_storage_errors.labels(source, op)


class SupervisorMetrics:
    """The supervisor's own metrics with ``workers: N`` (served after the workers' merged
    ones, which carry ``worker="<i>"``)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.worker_up = Gauge(
            "shipper_worker_up", "1 while a worker process runs and answers its telemetry",
            ["worker"], registry=r)
        self.worker_restarts = Counter(
            "shipper_worker_restarts", "Worker processes started again after they exited "
            "unexpectedly", ["worker"], registry=r)
