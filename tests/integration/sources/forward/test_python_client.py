"""Interop with the real Python client, ``fluent-logger`` from PyPI, in every mode it has.

fluent-logger sends Message mode only and has no acks; its modes differ in the time format
(integer seconds, EventTime with nanoseconds, a float) and in the sender (blocking, the
background-thread async sender, the logging handler).
"""

from __future__ import annotations

import asyncio
import logging

from fluent import asyncsender, handler, sender

from tests.integration.sources.forward.conftest import running, wait_for


async def test_blocking_sender_with_integer_seconds() -> None:
    async with running() as srv:
        def send() -> None:
            s = sender.FluentSender("app", host="127.0.0.1", port=srv.port)
            try:
                for i in range(20):
                    assert s.emit("web", {"i": i, "msg": "héllo", "raw": b"\x00\xff"})
            finally:
                s.close()
        await asyncio.to_thread(send)
        await wait_for(lambda: len(srv.collector.records) == 20, what="20 records")
        records = srv.collector.records
        assert [r.body["i"] for r in records] == list(range(20))
        assert {r.tag for r in records} == {"app.web"}
        assert records[0].body["msg"] == "héllo" and records[0].body["raw"] == "\x00\\xff"
        assert records[0].time_ns % 1_000_000_000 == 0


async def test_nanosecond_precision_sends_event_time() -> None:
    async with running() as srv:
        def send() -> None:
            s = sender.FluentSender("app", host="127.0.0.1", port=srv.port,
                                    nanosecond_precision=True)
            try:
                assert s.emit_with_time("ns", 1_700_000_000.123456789, {"k": "v"})
                assert s.emit("ns", {"k": "now"})
            finally:
                s.close()
        await asyncio.to_thread(send)
        await wait_for(lambda: len(srv.collector.records) == 2, what="2 records")
        first = srv.collector.records[0]
        assert first.time_ns // 1000 == 1_700_000_000_123_456  # below µs a float is not exact
        assert first.time_ns % 1_000_000_000 != 0


async def test_float_time_without_nanosecond_precision() -> None:
    async with running() as srv:
        def send() -> None:
            s = sender.FluentSender("app", host="127.0.0.1", port=srv.port)
            try:
                assert s.emit_with_time("f", 1_700_000_000.5, {"k": 1})
            finally:
                s.close()
        await asyncio.to_thread(send)
        await wait_for(lambda: len(srv.collector.records) == 1, what="1 record")
        assert srv.collector.records[0].time_ns == 1_700_000_000_500_000_000


async def test_async_sender_background_thread() -> None:
    async with running() as srv:
        def send() -> None:
            s = asyncsender.FluentSender("bg", host="127.0.0.1", port=srv.port)
            try:
                for i in range(50):
                    s.emit("evt", {"i": i})
            finally:
                s.close()  # flushes the queue
        await asyncio.to_thread(send)
        await wait_for(lambda: len(srv.collector.records) == 50, what="50 records")
        assert sorted(r.body["i"] for r in srv.collector.records) == list(range(50))


async def test_logging_handler() -> None:
    async with running() as srv:
        def send() -> None:
            h = handler.FluentHandler("py", host="127.0.0.1", port=srv.port)
            h.setFormatter(handler.FluentRecordFormatter(
                {"level": "%(levelname)s", "where": "%(module)s"}))
            logger = logging.getLogger("forward-interop")
            logger.propagate = False
            logger.addHandler(h)
            try:
                logger.warning({"event": "disk full", "free": 0})
            finally:
                logger.removeHandler(h)
                h.close()
        await asyncio.to_thread(send)
        await wait_for(lambda: len(srv.collector.records) == 1, what="1 record")
        record = srv.collector.records[0]
        assert record.tag == "py"
        assert record.body["level"] == "WARNING" and record.body["event"] == "disk full"
