"""One worker process of ``workers: N``: the ordinary agent on its share of the node.

It runs ``Agent`` with the config ``role.worker_config`` derives (own state directory,
loopback telemetry, non-tail sources only in worker 0) and the tail filtered to its shard.
Once its telemetry listens it writes the port to ``telemetry.json`` for the supervisor.

A worker whose supervisor disappeared (killed with SIGKILL, OOM) would otherwise run on
unsupervised, and a new supervisor would start a second reader of the same files: so it
watches its parent process id and drains and stops, like on SIGTERM, when it changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

from shipper.config.model import AgentConfig
from shipper.workers.role import PORT_FILE, WorkerRole, worker_config, write_port_file

log = logging.getLogger(__name__)

PARENT_CHECK_SECS = 1.0


async def run_worker(config: AgentConfig, role: WorkerRole) -> None:
    """Run worker ``role`` until SIGTERM/SIGINT or until its supervisor is gone."""
    from shipper.app import Agent
    from shipper.stopping import stop_on_signals
    from shipper.tuning import tune_for_throughput

    own = worker_config(config, role)
    state_dir = Path(own.state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)

    def report(port: int) -> None:
        try:
            write_port_file(state_dir / PORT_FILE, port)
        except OSError as exc:
            log.error("cannot tell the supervisor the telemetry port: %s", exc,
                      extra={"event": "worker_port_unreported"})

    agent = Agent(own, shard=role.shard().owns_real, on_listening=report)
    tune_for_throughput()
    stop = stop_on_signals()
    watcher = asyncio.create_task(_watch_parent(stop, os.getppid()))
    try:
        await agent.run(stop)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def _watch_parent(stop: asyncio.Event, parent: int) -> None:
    while not stop.is_set():
        await asyncio.sleep(PARENT_CHECK_SECS)
        if os.getppid() != parent:
            log.error("the supervisor is gone; stopping", extra={"event": "worker_orphaned"})
            stop.set()
