"""The agent's own logs: JSON lines, and repeated warnings held back with a count."""

import logging

import orjson

from shipper.logs import JsonFormatter, RepeatLimiter


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Sink(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


def setup(window=10.0, max_keys=1024):
    clock = Clock()
    sink = Sink()
    limiter = RepeatLimiter(sink.handle, window, clock=clock, max_keys=max_keys)
    sink.addFilter(limiter)
    logger = logging.getLogger(f"test.logs.{id(sink)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(sink)
    return logger, sink, limiter, clock


def warn(logger, msg="ES refused: HTTP 503", output="es", event="delivery_retry"):
    logger.warning(msg, extra={"event": event, "output": output})


def written(sink):
    return [(r.getMessage(), getattr(r, "repeated", None)) for r in sink.records]


def test_the_first_line_is_written_repeats_are_counted_and_reported_when_the_window_ends():
    logger, sink, limiter, clock = setup()
    for _ in range(100):
        warn(logger)
    assert written(sink) == [("ES refused: HTTP 503", None)]
    clock.now += 9.9
    limiter.flush_expired()
    assert len(sink.records) == 1
    clock.now += 0.1
    limiter.flush_expired()
    assert written(sink)[1:] == [("ES refused: HTTP 503", 99)]


def test_a_lasting_condition_writes_one_line_per_window_and_loses_no_count():
    logger, sink, limiter, clock = setup()
    for _ in range(30):  # 30 s of ten errors per second
        for _ in range(10):
            warn(logger)
            clock.now += 0.1
        limiter.flush_expired()
    limiter.flush_all()
    assert len(sink.records) <= 5
    # The first line, then summaries that each stand for the lines they held back.
    assert sum(r.repeated for r in sink.records[1:]) + 1 == 300


def test_after_a_quiet_window_the_next_line_is_written_at_once():
    logger, sink, limiter, clock = setup()
    warn(logger)
    clock.now += 10
    assert limiter.flush_expired() is None  # nothing held: the condition is forgotten
    warn(logger)
    assert written(sink) == [("ES refused: HTTP 503", None)] * 2


def test_a_line_after_the_window_carries_the_count_if_no_flush_came_first():
    logger, sink, limiter, clock = setup()
    warn(logger)
    warn(logger)
    warn(logger)
    clock.now += 11
    warn(logger)
    assert written(sink) == [("ES refused: HTTP 503", None), ("ES refused: HTTP 503", 2)]
    limiter.flush_expired()
    assert len(sink.records) == 2


def test_event_message_and_component_make_the_key():
    logger, sink, _, _ = setup()
    warn(logger, output="es")
    warn(logger, output="logzio")
    warn(logger, msg="ES refused: HTTP 429")
    warn(logger, event="output_start_failed")
    warn(logger)
    assert len(sink.records) == 4


def test_info_and_debug_are_never_held_back():
    logger, sink, _, _ = setup()
    for _ in range(5):
        logger.info("agent started", extra={"event": "agent_started"})
    assert len(sink.records) == 5


def test_past_the_key_limit_new_conditions_are_written_unthrottled():
    logger, sink, _, _ = setup(max_keys=2)
    for i in range(4):
        warn(logger, msg=f"m{i}")
        warn(logger, msg=f"m{i}")
    assert [m for m, _ in written(sink)] == ["m0", "m1", "m2", "m2", "m3", "m3"]


def test_flush_all_writes_pending_counts_without_tracebacks():
    logger, sink, limiter, _ = setup()
    try:
        raise ValueError("boom")
    except ValueError:
        for _ in range(3):
            logger.exception("failed", extra={"event": "x"})
    limiter.flush_all()
    first, summary = sink.records
    assert first.exc_info is not None
    assert summary.repeated == 2 and summary.exc_info is None


def test_the_count_appears_in_the_json_line():
    logger, sink, limiter, clock = setup()
    warn(logger)
    warn(logger)
    clock.now += 10
    limiter.flush_expired()
    line = orjson.loads(JsonFormatter().format(sink.records[-1]))
    assert line["event"] == "delivery_retry" and line["repeated"] == 1
    assert line["output"] == "es" and line["level"] == "warning"


def test_library_lines_get_our_event_and_are_limited_by_event_not_text():
    from shipper.logs import LibraryEvents

    clock = Clock()
    sink = Sink()
    limiter = RepeatLimiter(sink.handle, 10.0, clock=clock)
    sink.addFilter(LibraryEvents())
    sink.addFilter(limiter)
    pool = logging.getLogger("elastic_transport.node_pool")
    saved = (pool.handlers[:], pool.propagate, pool.level)
    pool.handlers[:] = [sink]
    pool.propagate = False
    pool.setLevel(logging.DEBUG)
    try:
        for n in range(1, 8):  # the text changes every time, as elastic_transport's does
            pool.warning("Node <Urllib3HttpNode(http://es:9200)> has failed for %d times in a "
                         "row, putting on %d second timeout", n, 2 ** (n - 1))
        clock.now += 10
        limiter.flush_expired()
    finally:
        pool.handlers[:], pool.propagate, pool.level = saved
    assert [(r.event, r.library, getattr(r, "repeated", None)) for r in sink.records] == [
        ("es_node_failed", "elastic_transport.node_pool", None),
        ("es_node_failed", "elastic_transport.node_pool", 6)]
    assert "failed for 7 times" in sink.records[1].getMessage()  # the latest text


def test_library_events_leave_our_own_lines_alone():
    from shipper.logs import LIBRARY_EVENT, library_event

    assert library_event("shipper.delivery") is None
    assert library_event("outputs.elasticsearch") is None
    assert library_event("elastic_transport.transport") == "es_transport_retry"
    assert library_event("elastic_transport") == "es_transport"
    assert library_event("urllib3.connectionpool") == "http_client"
    assert library_event("kubernetes_asyncio.client") == LIBRARY_EVENT
    assert library_event("shipperx") == LIBRARY_EVENT


def test_a_node_marked_alive_is_a_recovery_at_info_not_a_failure():
    """elastic_transport logs the recovery of a node at warning level on the same logger as
    its failures: it must not count as ``es_node_failed`` (alerts, repeat windows)."""
    from shipper.logs import LibraryEvents

    clock = Clock()
    sink = Sink()
    limiter = RepeatLimiter(sink.handle, 10.0, clock=clock)
    sink.addFilter(LibraryEvents())
    sink.addFilter(limiter)
    pool = logging.getLogger("elastic_transport.node_pool")
    saved = (pool.handlers[:], pool.propagate, pool.level)
    pool.handlers[:] = [sink]
    pool.propagate = False
    pool.setLevel(logging.DEBUG)
    try:
        pool.warning("Node %r has failed for %i times in a row, putting on %i second timeout",
                     "<Urllib3HttpNode(http://es:9200)>", 1, 1)
        pool.warning("Node %r has been marked alive after a successful request",
                     "<Urllib3HttpNode(http://es:9200)>")
        pool.warning("Node %r has failed for %i times in a row, putting on %i second timeout",
                     "<Urllib3HttpNode(http://es:9200)>", 1, 1)
        clock.now += 10
        limiter.flush_expired()
    finally:
        pool.handlers[:], pool.propagate, pool.level = saved
    seen = [(r.event, r.levelname, getattr(r, "repeated", None)) for r in sink.records]
    # the recovery passes at once (info is never held back); the next failure in the same
    # window is counted as a repeat of the first one
    assert seen == [("es_node_failed", "WARNING", None), ("es_node_alive", "INFO", None),
                    ("es_node_failed", "WARNING", 1)]
    line = orjson.loads(JsonFormatter().format(sink.records[1]))
    assert line["event"] == "es_node_alive" and line["level"] == "info"
