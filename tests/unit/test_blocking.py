"""Blocking calls in daemon threads, and an exit that does not wait for stuck threads."""

from __future__ import annotations

import asyncio
import contextvars
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from shipper.blocking import DaemonThreads, exit_if_stuck, run_bounded

WHO: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


def _thread_info() -> tuple[str, bool, str]:
    me = threading.current_thread()
    return me.name, me.daemon, WHO.get()


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """Thread names unique to the test: threads of earlier tests may still be ending."""
    return f"io{abs(hash(request.node.name)) % 10**6}"


async def test_run_returns_the_result_in_a_daemon_thread_with_the_callers_context(
        name: str) -> None:
    io = DaemonThreads(name)
    WHO.set("caller")
    thread_name, daemon, who = await io.run(_thread_info)
    assert thread_name.startswith(f"{name}-") and thread_name != threading.current_thread().name
    assert daemon
    assert who == "caller"
    io.shutdown()


async def test_run_raises_the_exception_of_the_call(name: str) -> None:
    io = DaemonThreads(name)

    def fail() -> None:
        raise OSError("connection reset")

    with pytest.raises(OSError, match="connection reset"):
        await io.run(fail)
    io.shutdown()


async def test_sequential_calls_reuse_one_thread_concurrent_ones_get_their_own(name: str) -> None:
    io = DaemonThreads(name)
    names = {(await io.run(_thread_info))[0] for _ in range(5)}
    assert len(names) == 1 and io.threads == 1
    both = threading.Barrier(2, timeout=5)  # each call waits for the other: needs 2 threads
    await asyncio.gather(io.run(both.wait), io.run(both.wait))
    assert io.threads == 2
    io.shutdown()


async def test_a_cancelled_call_is_abandoned_at_once_and_its_thread_is_not_waited_for(
        name: str) -> None:
    io = DaemonThreads(name)
    release = threading.Event()
    started = threading.Event()

    def hang() -> str:
        started.set()
        release.wait(10)
        return "late"

    task = asyncio.create_task(io.run(hang))
    assert await asyncio.to_thread(started.wait, 5)
    before = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - before < 1.0
    io.shutdown()
    busy = [t for t in threading.enumerate() if t.name.startswith(f"{name}-")]
    assert busy and all(t.daemon for t in busy)  # interpreter exit does not join them
    release.set()  # the abandoned call ends; its result is dropped without error
    for t in busy:
        t.join(5)
        assert not t.is_alive()


async def test_shutdown_ends_idle_threads_and_later_calls_still_work(name: str) -> None:
    io = DaemonThreads(name)
    await io.run(_thread_info)
    (thread,) = [t for t in threading.enumerate() if t.name.startswith(f"{name}-")]
    io.shutdown()
    thread.join(5)
    assert not thread.is_alive() and io.threads == 0
    assert (await io.run(lambda: 42)) == 42
    io.shutdown()


def test_run_bounded_does_not_wait_for_a_stuck_default_executor_thread() -> None:
    release = threading.Event()

    async def main() -> str:
        asyncio.get_running_loop().run_in_executor(None, release.wait, 10)
        await asyncio.sleep(0)
        return "done"

    before = time.monotonic()
    try:
        assert run_bounded(main()) == "done"
        assert time.monotonic() - before < 2.0
    finally:
        release.set()


def test_exit_if_stuck_returns_when_no_thread_is_blocked() -> None:
    exit_if_stuck(3, grace=0.1)  # would end the test process otherwise


def test_exit_if_stuck_ends_the_process_when_a_thread_stays_blocked() -> None:
    script = textwrap.dedent("""
        import logging, threading, time
        from shipper.blocking import exit_if_stuck
        logging.basicConfig(format="%(event)s %(threads)s")
        threading.Thread(target=time.sleep, args=(30,), name="hung-disk").start()
        exit_if_stuck(3, grace=0.2)
        print("not reached")
    """)
    before = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=20)
    assert time.monotonic() - before < 10
    assert done.returncode == 3
    assert "agent_exit_forced ['hung-disk']" in done.stderr
    assert "not reached" not in done.stdout
