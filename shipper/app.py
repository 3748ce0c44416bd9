"""Builds the agent from a validated config and runs it until asked to stop.

This is the only module that knows every component type (and the only one importing
``outputs``). Shutdown order is what makes SIGTERM lossless: stop the sources reading, close
the buffers so their last chunks become ready, let delivery drain until the deadline, then
persist the checkpoints that the acknowledgements allowed. Whatever was not delivered by the
deadline was never checkpointed, so it is read again on the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from outputs.elasticsearch import ElasticsearchOutput
from outputs.elasticsearch.config import ElasticsearchConfig
from outputs.forward import ForwardOutput
from outputs.forward.config import ForwardOutputConfig
from outputs.logzio import LogzioOutput
from outputs.logzio.config import LogzioConfig
from outputs.null import NullOutput
from outputs.null.config import NullConfig
from outputs.stdout import StdoutOutput
from outputs.stdout.config import StdoutConfig
from shipper import speedups
from shipper.buffer import Buffer, build_buffer
from shipper.config.docgen import render_agent_docs
from shipper.config.loader import load_config, parse_config_text
from shipper.config.model import AgentConfig
from shipper.config.statedir import prepare_state_dir
from shipper.deadletter import DeadLetterStore
from shipper.delivery import Delivery
from shipper.filters.envoy import EnvoyAccessLogConfig, EnvoyAccessLogFilter
from shipper.filters.json_merge import JsonMergeConfig, JsonMergeFilter
from shipper.filters.kubernetes import KubernetesMetadataConfig, KubernetesMetadataFilter
from shipper.health import OutputHealth
from shipper.metrics import Metrics
from shipper.pipeline import FilterStage, Pipeline, Route
from shipper.protocols import Filter, MultilineHints, Output, Source
from shipper.sources.forward import ForwardSource
from shipper.sources.forward.config import ForwardConfig
from shipper.sources.tail import TailSource
from shipper.sources.tail.config import TailConfig
from shipper.tap.hub import Tap
from shipper.telemetry import TelemetryServer

log = logging.getLogger(__name__)
#: How long closing (final fsync, checkpoints, connections) may take past the deadline.
CLOSE_GRACE_SECS = 1.0

SOURCE_TYPES: dict[str, type] = {"tail": TailConfig, "forward": ForwardConfig}
OUTPUT_TYPES: dict[str, type] = {"elasticsearch": ElasticsearchConfig, "stdout": StdoutConfig,
                                  "logzio": LogzioConfig, "forward": ForwardOutputConfig,
                                  "null": NullConfig}
FILTER_TYPES: dict[str, type] = {"envoy_access_log": EnvoyAccessLogConfig,
                                  "json_merge": JsonMergeConfig,
                                  "kubernetes_metadata": KubernetesMetadataConfig}

_OUTPUT_FACTORIES: dict[type, Callable[[str, Any, Metrics], Output]] = {
    ElasticsearchConfig: ElasticsearchOutput,
    LogzioConfig: LogzioOutput,
    ForwardOutputConfig: ForwardOutput,
    StdoutConfig: StdoutOutput,
    NullConfig: NullOutput,
}


_FILTER_FACTORIES: dict[type, Callable[[str, Any, Metrics], Filter]] = {
    EnvoyAccessLogConfig: EnvoyAccessLogFilter,
    JsonMergeConfig: JsonMergeFilter,
    KubernetesMetadataConfig: KubernetesMetadataFilter,
}


def load_agent_config(path: str | Path, environ: Mapping[str, str] | None = None,
                      ) -> AgentConfig:
    """Load a config file with every component type this build knows."""
    return load_config(path, source_types=SOURCE_TYPES, output_types=OUTPUT_TYPES,
                       filter_types=FILTER_TYPES, environ=environ)


def parse_agent_config(text: str, file: str = "<config>",
                       environ: Mapping[str, str] | None = None) -> AgentConfig:
    """Validate config text with every component type this build knows."""
    return parse_config_text(text, file=file, source_types=SOURCE_TYPES,
                             output_types=OUTPUT_TYPES, filter_types=FILTER_TYPES,
                             environ=environ)


def render_config_reference() -> str:
    """docs/CONFIG.md: every key of every component type."""
    return render_agent_docs(SOURCE_TYPES, OUTPUT_TYPES, filter_types=FILTER_TYPES)


def build_source(name: str, config: Any, state_dir: Path, metrics: Metrics,
                 shard: Callable[[str], bool] | None = None) -> Source:
    """``shard``: with ``workers: N``, the real paths this worker's tail sources read."""
    if isinstance(config, TailConfig):
        metrics.declare_tail_source(name)  # loss counters at zero, for increase() alerts
        return TailSource(name, config, state_dir, metrics, shard=shard)
    if isinstance(config, ForwardConfig):
        return ForwardSource(name, config, metrics)
    raise TypeError(f"no source for config type {type(config).__name__}")


@dataclass
class OutputUnit:
    """One output with everything that belongs to it alone."""

    output: Output
    buffer: Buffer
    delivery: Delivery
    health: OutputHealth


class Agent:
    """The running agent: sources → pipeline → buffers → delivery → outputs."""

    def __init__(self, config: AgentConfig, metrics: Metrics | None = None,
                 shard: Callable[[str], bool] | None = None,
                 on_listening: Callable[[int], None] | None = None) -> None:
        """``shard`` and ``on_listening`` serve ``workers: N``: the files this process
        reads, and a call with the telemetry port once it listens."""
        self.config = config
        self.on_listening = on_listening
        self.metrics = metrics or Metrics()
        self.state_dir = Path(config.state_dir)
        self.dead_letters = DeadLetterStore(self.state_dir / "dead-letter", self.metrics)
        self.units: dict[str, OutputUnit] = {}
        routes = []
        for name, out_cfg in config.outputs.items():
            factory = _OUTPUT_FACTORIES[type(out_cfg)]
            output = factory(name, out_cfg, self.metrics)
            buffer = build_buffer(name, out_cfg.buffer, self.metrics, self.state_dir)
            health = OutputHealth(name, config.stall_after_secs,
                                  has_backlog=_backlog_probe(buffer),
                                  backlog_age=buffer.oldest_age,
                                  stuck_after_secs=config.stuck_after_secs,
                                  storage_problem=getattr(buffer, "storage_problem", None))
            delivery = Delivery(output, buffer, self.dead_letters, self.metrics, out_cfg.buffer,
                                health)
            self.units[name] = OutputUnit(output, buffer, delivery, health)
            routes.append(Route(output, buffer, out_cfg.match))
        stages = [FilterStage(_FILTER_FACTORIES[type(f_cfg)](name, f_cfg, self.metrics),
                              getattr(f_cfg, "match", "**"))
                  for name, f_cfg in config.filters.items()]
        self.filters = [stage.filter for stage in stages]
        tap_config = config.telemetry.tap
        self.tap = Tap(self.metrics, tap_config) if tap_config.enabled else None
        self.pipeline = Pipeline(stages, routes, tap=self.tap)
        self.sources = [build_source(name, cfg, self.state_dir, self.metrics, shard)
                        for name, cfg in config.sources.items()]
        # Pod annotations choose multiline presets, but joining happens in the tail: a filter
        # that watches the pods answers the tail sources' per-file questions.
        hints = next((f for f in self.filters if isinstance(f, MultilineHints)), None)
        if hints is not None:
            for source in self.sources:
                if isinstance(source, TailSource):
                    source.use_multiline_hints(hints)
        self.telemetry = TelemetryServer(config.telemetry.listen, self.metrics,
                                         [u.health for u in self.units.values()],
                                         before_scrape=self.refresh_gauges, tap=self.tap,
                                         tap_listen=tap_config.listen,
                                         sources=[s.health for s in self.sources
                                                  if isinstance(s, TailSource)])

    def settled_records(self, output: str) -> float:
        """Records of ``output`` that are done: delivered, already there, or dead-lettered."""
        total = 0.0
        for metric in (self.metrics.records_delivered, self.metrics.records_duplicate,
                       self.metrics.records_dead_lettered):
            for family in metric.collect():
                for sample in family.samples:
                    if sample.name.endswith("_total") and sample.labels.get("output") == output:
                        total += sample.value
        return total

    def refresh_gauges(self) -> None:
        now = time.monotonic()
        for name, unit in self.units.items():
            self.metrics.oldest_unacked_age.labels(name).set(unit.buffer.oldest_age(now))

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set (or a source fails), then shut down within the deadline."""
        prepare_state_dir(self.state_dir)  # StorageError naming the path, not an OSError
        await _start_filters(self.filters)  # e.g. the Kubernetes watch: before any record flows
        try:  # disk buffers recover (and may refuse a newer format) before anything reads
            for unit in self.units.values():
                await unit.buffer.open()
        except BaseException:
            for unit in self.units.values():
                await unit.buffer.shutdown()
            await _close_filters(self.filters)
            raise
        await self.telemetry.start()
        if self.on_listening is not None:
            self.on_listening(self.telemetry.port)
        deliveries = [asyncio.create_task(u.delivery.run(), name=f"delivery-{n}")
                      for n, u in self.units.items()]
        sources = [asyncio.create_task(s.run(self.pipeline.emit), name=f"source-{s.name}")
                   for s in self.sources]
        log.info("agent started", extra={"event": "agent_started",
                                         "sources": [s.name for s in self.sources],
                                         "outputs": list(self.units),
                                         "implementation": speedups.IMPLEMENTATION})
        if speedups.speedups is None:
            log.warning("per-line path running on Python (slower)",
                        extra={"event": "speedups_unavailable",
                               "reason": speedups.fallback_reason})
        stopper = asyncio.create_task(stop.wait())
        failure: BaseException | None = None
        try:
            done, _ = await asyncio.wait([stopper, *sources, *deliveries],
                                         return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stopper and task.exception() is not None:
                    failure = task.exception()
                    log.error("component failed; shutting down",
                              extra={"event": "component_failed", "task": task.get_name()},
                              exc_info=failure)
        finally:
            stopper.cancel()
            await self._shutdown(sources, deliveries)
        if failure is not None:
            raise failure

    async def _shutdown(self, sources: list[asyncio.Task[None]],
                        deliveries: list[asyncio.Task[None]]) -> None:
        deadline = time.monotonic() + self.config.shutdown_deadline_secs
        log.info("draining", extra={"event": "agent_draining"})
        for s in self.sources:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(s.stop(), timeout=max(0.1, deadline - time.monotonic()))
        await _wait_until(sources, deadline)
        for unit in self.units.values():
            unit.buffer.close()
        await _wait_until(deliveries, deadline)
        # Closing is bounded too: a hung disk (final fsync, checkpoint write) or connection
        # must not keep the process past the deadline. A step cut short persists less, which
        # is safe: what was not acknowledged is read again at the next start.
        closing = max(deadline, time.monotonic()) + CLOSE_GRACE_SECS
        for name, unit in self.units.items():  # a disk buffer's final fsync releases acks
            try:
                await _bounded(unit.buffer.shutdown(), closing, f"buffer {name}")
            except Exception:
                log.exception("could not persist the buffer",
                              extra={"event": "buffer_close_failed"})
        undelivered = sum(u.buffer.bytes_used for u in self.units.values())
        for s in self.sources:
            try:
                await _bounded(s.close(), closing, f"source {s.name}")
            except Exception:
                log.exception("could not persist final progress",
                              extra={"event": "source_close_failed", "source": s.name})
        for name, unit in self.units.items():
            with contextlib.suppress(Exception):
                await _bounded(unit.output.close(), closing, f"output {name}")
        await _bounded(_close_filters(self.filters), closing, "filters")
        await _bounded(self.telemetry.close(), closing, "telemetry")
        log.info("agent stopped", extra={"event": "agent_stopped",
                                         "undelivered_bytes": undelivered,
                                         # not acknowledged: read again at the next start
                                         "unacknowledged_records":
                                             self.pipeline.abandoned_records})


async def _start_filters(filters: list[Filter]) -> None:
    """Call the optional ``async start()`` of each filter; on failure close those started."""
    started: list[Filter] = []
    try:
        for f in filters:
            start = getattr(f, "start", None)
            if start is not None:
                await start()
                started.append(f)
    except BaseException:
        await _close_filters(started)
        raise


async def _bounded(step: Coroutine[Any, Any, None], until: float, what: str) -> None:
    """Await a shutdown step until ``until`` (monotonic); past it, cancel it and say so."""
    try:
        await asyncio.wait_for(step, timeout=max(0.05, until - time.monotonic()))
    except TimeoutError:
        log.warning("%s did not close in time; stopping without it", what,
                    extra={"event": "shutdown_step_timeout", "step": what})


async def _close_filters(filters: list[Filter]) -> None:
    """Call the optional ``async close()`` of each filter; a failure is logged, not raised."""
    for f in filters:
        close = getattr(f, "close", None)
        if close is not None:
            try:
                await close()
            except Exception:
                log.exception("could not close a filter", extra={"event": "filter_close_failed"})


def _backlog_probe(buffer: Buffer) -> Callable[[], bool]:
    def has_backlog() -> bool:
        return not buffer.empty

    return has_backlog


async def _wait_until(tasks: list[asyncio.Task[None]], deadline: float) -> None:
    pending = [t for t in tasks if not t.done()]
    if pending:
        _, still = await asyncio.wait(pending, timeout=max(0.0, deadline - time.monotonic()))
        for t in still:
            t.cancel()
        if still:
            await asyncio.wait(still, timeout=5)
    for t in tasks:
        if t.done() and not t.cancelled() and t.exception() is not None:
            log.error("task ended with an error", extra={"event": "task_failed",
                                                         "task": t.get_name()},
                      exc_info=t.exception())
