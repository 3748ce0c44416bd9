"""Blocking calls that must never hold the process past its shutdown deadline.

A network request run with ``asyncio.to_thread`` keeps running after its task is cancelled,
and the thread that runs it is waited for twice on the way out: ``asyncio.run`` joins the
default executor, and the interpreter joins every ``concurrent.futures`` worker at exit. A
bulk request that the server never answers then keeps a stopping agent alive for the whole
request timeout, long after ``agent_stopped`` was logged (and past the kubelet's grace).

``DaemonThreads`` runs an output's blocking network calls in daemon threads it owns: a call
abandoned at shutdown is simply left behind, and the process exits without it. What such a
call was sending is not lost: its chunk was never settled, so its records are read again
(memory buffer, no ack sent) or are still in the disk buffer at the next start.

``run_bounded`` replaces ``asyncio.run`` for the agent and its workers: it does not wait for
the default executor (disk work, the Kubernetes client's setup); ``exit_if_stuck`` then gives
leftover non-daemon threads ``EXIT_GRACE_SECS`` and, if one is still stuck (a hung disk),
logs it and ends the process anyway (``os._exit``): the agent has already stopped and
persisted what it could.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["DaemonThreads", "exit_if_stuck", "run_bounded"]

T = TypeVar("T")
log = logging.getLogger(__name__)

#: How long ``run_bounded`` waits for leftover threads once the agent has stopped.
EXIT_GRACE_SECS = 1.0

_Item = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]


class DaemonThreads:
    """Runs blocking calls in daemon threads owned by one component (an output).

    A thread is started when every existing one is busy and kept for the next call, so there
    are never more threads than calls in flight at once (bounded by the output's in-flight
    limit). ``shutdown`` lets idle threads end and abandons busy ones; calls made after it
    start a fresh set of threads (an output may be started again).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._threads = 0
        self._idle = 0
        self._started = 0  # for thread names only

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``await fn(*args, **kwargs)`` in one of our threads (contextvars carried over,
        as ``asyncio.to_thread`` does). Cancelling the caller abandons the call: its thread
        finishes it in the background and its result is dropped."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        context = contextvars.copy_context()
        call = functools.partial(context.run, fn, *args, **kwargs)
        with self._lock:
            work = self._queue
            if self._idle:
                self._idle -= 1
            else:
                self._threads += 1
                self._started += 1
                threading.Thread(target=self._work, args=(work,), daemon=True,
                                 name=f"{self.name}-{self._started}").start()
            work.put((loop, future, call))
        return await future

    def shutdown(self) -> None:
        """Let the idle threads end; busy ones end after their call (or with the process)."""
        with self._lock:
            old, count = self._queue, self._threads
            self._queue = queue.SimpleQueue()
            self._threads = self._idle = 0
        for _ in range(count):
            old.put(None)

    @property
    def threads(self) -> int:
        """Threads of the current set (busy or idle)."""
        return self._threads

    def _work(self, work: queue.SimpleQueue[_Item | None]) -> None:
        while True:
            item = work.get()
            if item is None:
                return
            loop, future, call = item
            result: Any = None
            error: BaseException | None = None
            if not future.cancelled():
                try:
                    result = call()
                except BaseException as exc:  # handed to the awaiting task
                    error = exc
            # Idle before the caller learns the result, so that its next call reuses us.
            with self._lock:
                if work is self._queue:  # else shut down while busy: a sentinel is queued
                    self._idle += 1
            if not future.cancelled():
                _settle(loop, future, result, error)


def _settle(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], result: Any,
            exc: BaseException | None) -> None:
    def settle() -> None:
        if future.done():  # the caller was cancelled meanwhile
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)

    try:
        loop.call_soon_threadsafe(settle)
    except RuntimeError:  # the loop is closed: nobody waits for this call any more
        pass


def run_bounded(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` without waiting for the default executor's threads.

    Call ``exit_if_stuck`` once done (and errors logged): threads still blocked there are
    non-daemon ones that the interpreter would wait for at exit.
    """
    executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="shipper-io")
    # Not asyncio.run / Runner: their close joins the default executor without a bound.
    # ``loop.close()`` shuts it down without waiting.
    loop = asyncio.new_event_loop()
    loop.set_default_executor(executor)
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(main)
    finally:
        try:
            _cancel_all_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
            executor.shutdown(wait=False, cancel_futures=True)


def _cancel_all_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the tasks ``main`` left behind and let them finish (as ``asyncio.run`` does)."""
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


def exit_if_stuck(code: int, grace: float = EXIT_GRACE_SECS) -> None:
    """Join non-daemon threads for ``grace`` seconds; if any is left, log which and end the
    process now with ``code`` (``os._exit``: the agent has stopped and persisted what it
    could; only the interpreter's final join of those threads is skipped)."""
    deadline = time.monotonic() + grace
    main = threading.main_thread()
    stuck = []
    for thread in threading.enumerate():
        if thread is main or thread.daemon or thread is threading.current_thread():
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            stuck.append(thread.name)
    if not stuck:
        return
    failure = sys.exc_info()[1]  # called from a ``finally``: say what went wrong first
    if failure is not None and not isinstance(failure, SystemExit):
        log.error("agent failed", extra={"event": "agent_failed"}, exc_info=failure)
    log.warning("threads still blocked after the agent stopped; exiting without them",
                extra={"event": "agent_exit_forced", "threads": stuck})
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
