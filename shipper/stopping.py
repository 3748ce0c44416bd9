"""How a running process learns it should stop: SIGTERM (the kubelet) or SIGINT (a terminal).

The agent, each ``workers: N`` worker and their supervisor all stop the same way: the signal
sets an event, and the process drains within ``shutdown_deadline_secs`` instead of dying
with records in flight.
"""

from __future__ import annotations

import asyncio
import signal


def stop_on_signals() -> asyncio.Event:
    """An event that SIGTERM or SIGINT sets (call it from inside the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop
