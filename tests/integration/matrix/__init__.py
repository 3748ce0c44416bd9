"""The stop/fault matrix: how the agent stops x buffer x output behaviour x source.

Every cell runs the real agent process against the real Elasticsearch API of the test
session (``SHIPPER_TEST_ES_URL``, a container, or the embedded server; see
``tests/es_server.py``), through ``bulkproxy.BulkFaultProxy``: a small HTTP proxy on
127.0.0.1 that forwards to that server and injects what it cannot produce on its own
(outages, 429 storms, per-item 400/429 answers, answers lost after indexing).

Axes (``cell.py``):

* stop: SIGTERM while data is in flight with ``shutdown_deadline_secs: 1``, SIGKILL, and
  every named crash point of ``shipper/crashpoints.py`` (``SHIPPER_CRASHPOINT``);
* buffer: memory, disk (``when_full: block``, a small ``total_limit_bytes``);
* output: up, down, flapping, 429 storm, partial per-item failures;
* source: tail (CRI and Docker files with split messages) and forward (an at-least-once
  client that waits for acks and resends what was not acknowledged); the full product also
  runs both into one buffer.

Impossible cells are left out (``cell.applicable``): a ``buffer_*`` point with the memory
buffer, a point after delivery while the output accepts nothing, the tail's checkpoint point
without a tail.

Oracle (``scenario.check_exactly_once``): every message exactly once in the index with its
exact text (a CRI ``P``+``F`` or Docker >16 KiB message is one document), the ones the proxy
refused with 400 only in the dead-letter store, and nothing else anywhere.

The default run takes a diagonal (each stop kind, buffer, output behaviour and source at
least once) and the named scenarios of ``test_scenarios.py``; every other cell and variant is
marked slow (about 45 minutes on 2 cores)::

    .venv/bin/python -m pytest -m slow tests/integration/matrix
    .venv/bin/python -m pytest -m slow tests/integration/matrix -k "sigkill and forward"
"""
