"""Closing after the deadline is bounded: a hung disk or connection cannot hold the agent."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import pytest

from shipper.app import CLOSE_GRACE_SECS, Agent, parse_agent_config
from shipper.metrics import Metrics

CONFIG = """\
state_dir: {state}
sources:
  logs: {{type: tail, include: ["{state}/*.log"]}}
outputs:
  drop: {{type: "null"}}
telemetry: {{listen: "127.0.0.1:0"}}
shutdown_deadline_secs: 0.3
"""


@pytest.mark.parametrize("step", ["buffer", "source"])
async def test_a_close_step_that_hangs_is_cut_short_after_the_grace(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, step: str) -> None:
    agent = Agent(parse_agent_config(CONFIG.format(state=tmp_path)), Metrics())
    release = threading.Event()

    async def hang() -> None:  # a final fsync or checkpoint write on a disk that hangs
        await asyncio.to_thread(release.wait, 10)

    unit = agent.units["drop"]
    target = unit.buffer if step == "buffer" else agent.sources[0]
    name = "shutdown" if step == "buffer" else "close"
    setattr(target, name, hang)
    stop = asyncio.Event()
    stop.set()
    caplog.set_level(logging.INFO)
    before = time.monotonic()
    try:
        await asyncio.wait_for(agent.run(stop), 10)
        took = time.monotonic() - before
    finally:
        release.set()
    assert took < 0.3 + CLOSE_GRACE_SECS + 0.7, f"stopped after {took:.2f} s"
    events = [getattr(r, "event", None) for r in caplog.records]
    assert "shutdown_step_timeout" in events
    assert events[-1] == "agent_stopped"
