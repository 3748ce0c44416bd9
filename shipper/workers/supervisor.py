"""``shipper run`` with ``workers: N > 1``: start N worker processes and keep them running.

The supervisor reads nothing and ships nothing. It re-partitions the state for N
(``statedir.prepare``) before any worker starts, owns the telemetry address
(``telemetry.SupervisorTelemetry``), and starts each worker as this same program with
``SHIPPER_WORKER=<i>/<N>`` in its environment.

* SIGTERM/SIGINT are forwarded to every worker as SIGTERM; each drains within
  ``shutdown_deadline_secs`` as a single agent does. The supervisor waits that long plus
  ``STOP_GRACE_SECS``, then kills what is left (its unacknowledged data is read again on the
  next start) and exits 0 when every worker stopped cleanly.
* A worker that exits while no stop was asked for is started again after a backoff (1 s,
  doubling up to 30 s, back to 1 s after it ran for ``STABLE_SECS``). Nothing is lost: what
  it had not acknowledged is read again from its checkpoints, under the same document ids.
  More than ``RESTART_LIMIT`` restarts of one worker within ``RESTART_WINDOW_SECS`` stop
  the whole agent with exit 1, so the kubelet restarts the pod and the crash loop shows.
* A worker exiting with the configuration error status (2) is not restarted: the file
  changed under us and the next start must report it.

Workers notice a supervisor that vanished (SIGKILL, OOM) by their parent process id
changing, and stop on their own (``worker``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path

from shipper.config.model import AgentConfig
from shipper.errors import ShipperError
from shipper.metrics import SupervisorMetrics
from shipper.stopping import stop_on_signals
from shipper.workers import statedir
from shipper.workers.role import ENV, WorkerRole, port_file, read_port_file
from shipper.workers.telemetry import SupervisorTelemetry

log = logging.getLogger(__name__)

RESTART_INITIAL_SECS = 1.0
RESTART_MAX_SECS = 30.0
RESTART_LIMIT = 10
RESTART_WINDOW_SECS = 600.0
STABLE_SECS = 60.0
STOP_GRACE_SECS = 3.0
EXIT_CONFIG = 2


class WorkerSlot:
    """One worker index: its current process and its restart history."""

    def __init__(self, index: int, count: int) -> None:
        self.role = WorkerRole(index, count)
        self.process: asyncio.subprocess.Process | None = None
        self.started_at = 0.0
        self.restarts: deque[float] = deque()
        self.backoff = RESTART_INITIAL_SECS
        self.port: int | None = None
        self.exit_code: int | None = None


class Supervisor:
    """Runs N workers until stopped; ``run`` returns the process exit status."""

    def __init__(self, config_path: str, config: AgentConfig,
                 environ: Mapping[str, str] | None = None,
                 command: list[str] | None = None) -> None:
        self.config_path = config_path
        self.config = config
        self.count = config.workers
        self.state_dir = Path(config.state_dir)
        self.environ = dict(os.environ if environ is None else environ)
        self.command = command or [sys.executable, "-m", "shipper.cli", "run", "-c",
                                   config_path]
        self.slots = [WorkerSlot(i, self.count) for i in range(self.count)]
        self.metrics = SupervisorMetrics()
        self.telemetry = SupervisorTelemetry(config.telemetry.listen, self.ports,
                                             self.metrics)
        self.stopping = False
        self.failure: tuple[int, str] | None = None  # (exit status, why) once given up
        self._stop: asyncio.Event | None = None

    def ports(self) -> list[int | None]:
        """Each running worker's telemetry port (read from the file it writes on start)."""
        for slot in self.slots:
            proc = slot.process
            if proc is None or proc.returncode is not None:
                slot.port = None
            elif slot.port is None:
                slot.port = read_port_file(port_file(self.state_dir, slot.role.index),
                                           proc.pid)
        return [slot.port for slot in self.slots]

    async def run(self, stop: asyncio.Event) -> int:
        self._stop = stop
        await asyncio.to_thread(statedir.prepare_for, self.config, self.count)
        await self.telemetry.start()
        keepers = [asyncio.create_task(self._keep(slot), name=f"worker-{slot.role.index}")
                   for slot in self.slots]
        log.info("workers started", extra={"event": "workers_started", "workers": self.count})
        try:
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait([stopper, *keepers], return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            for task in keepers:
                if task.done() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            await self._stop_all(keepers)
            await self.telemetry.close()
        if self.failure is not None:
            status, why = self.failure
            log.error("workers stopped: %s", why, extra={"event": "workers_failed"})
            return status
        unclean = [s.role.index for s in self.slots if s.exit_code not in (0, None)]
        log.info("workers stopped", extra={"event": "workers_stopped", "unclean": unclean})
        return 1 if unclean else 0

    async def _spawn(self, slot: WorkerSlot) -> None:
        env = {**self.environ, ENV: slot.role.env_value}
        slot.port = None
        slot.exit_code = None
        slot.process = await asyncio.create_subprocess_exec(
            *self.command, env=env, stdin=asyncio.subprocess.DEVNULL)
        slot.started_at = time.monotonic()
        log.info("worker %d started", slot.role.index,
                 extra={"event": "worker_started", "worker": slot.role.index,
                        "pid": slot.process.pid})

    async def _keep(self, slot: WorkerSlot) -> None:
        """Start the worker, and start it again whenever it exits unasked (bounded)."""
        index = slot.role.index
        while not self.stopping:
            await self._spawn(slot)
            assert slot.process is not None
            code = await slot.process.wait()
            slot.exit_code = code
            if self.stopping:
                return
            ran = time.monotonic() - slot.started_at
            log.error("worker %d exited unexpectedly with status %d", index, code,
                      extra={"event": "worker_exited", "worker": index, "status": code,
                             "ran_secs": round(ran, 1)})
            if code == EXIT_CONFIG:
                self._give_up(EXIT_CONFIG, f"worker {index} rejected the configuration")
                return
            now = time.monotonic()
            slot.restarts.append(now)
            while slot.restarts and now - slot.restarts[0] > RESTART_WINDOW_SECS:
                slot.restarts.popleft()
            if len(slot.restarts) > RESTART_LIMIT:
                self._give_up(1, f"worker {index} exited {len(slot.restarts)} times in "
                                 f"{RESTART_WINDOW_SECS:.0f}s")
                return
            if ran >= STABLE_SECS:
                slot.backoff = RESTART_INITIAL_SECS
            delay = slot.backoff
            slot.backoff = min(RESTART_MAX_SECS, slot.backoff * 2)
            self.metrics.worker_restarts.labels(str(index)).inc()
            log.warning("restarting worker %d in %.1fs", index, delay,
                        extra={"event": "worker_restarting", "worker": index,
                               "delay_secs": delay})
            assert self._stop is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)

    def _give_up(self, status: int, why: str) -> None:
        if self.failure is None:
            self.failure = (status, why)
        assert self._stop is not None
        self._stop.set()

    async def _stop_all(self, keepers: list[asyncio.Task[None]]) -> None:
        """SIGTERM every worker, wait for the shutdown deadline (plus grace), kill the rest.

        Signals are sent in rounds until every keeper returned, so a worker that was being
        started at the moment of the stop is stopped too."""
        self.stopping = True
        if self._stop is not None:
            self._stop.set()  # keepers in a restart backoff return at once
        deadline = time.monotonic() + self.config.shutdown_deadline_secs + STOP_GRACE_SECS
        signalled: set[int] = set()
        pending = [k for k in keepers if not k.done()]
        while pending and time.monotonic() < deadline:
            for slot in self.slots:
                proc = slot.process
                if proc is not None and proc.returncode is None and proc.pid not in signalled:
                    signalled.add(proc.pid)
                    with contextlib.suppress(ProcessLookupError):
                        proc.send_signal(signal.SIGTERM)
                    log.info("stopping worker %d", slot.role.index,
                             extra={"event": "worker_stopping", "worker": slot.role.index})
            await asyncio.wait(pending, timeout=min(0.5, max(0.0, deadline - time.monotonic())))
            pending = [k for k in pending if not k.done()]
        for slot in self.slots:
            proc = slot.process
            if proc is not None and proc.returncode is None:
                log.error("worker %d did not stop in time; killing it", slot.role.index,
                          extra={"event": "worker_killed", "worker": slot.role.index})
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        if pending:
            await asyncio.wait(pending, timeout=5)
        for task in keepers:
            task.cancel()
        await asyncio.gather(*keepers, return_exceptions=True)


def run_supervisor(config_path: str, config: AgentConfig) -> int:
    """The ``shipper run`` of ``workers: N > 1``: supervise until SIGTERM/SIGINT."""

    async def main() -> int:
        return await Supervisor(config_path, config).run(stop_on_signals())

    try:
        return asyncio.run(main())
    except ShipperError as exc:
        log.error(str(exc), extra={"event": "agent_failed"})
        return 1
