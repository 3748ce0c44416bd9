"""The agent's stderr during an Elasticsearch outage (a real process, a closed port): the
transport library's node-failure lines carry our stable event and are limited by it."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson

CONFIG = """\
state_dir: {state}
sources:
  containers:
    type: tail
    include: ["{logs}/*.log"]
    read_from_head: true
outputs:
  es:
    type: elasticsearch
    hosts: ["http://127.0.0.1:{port}"]
    buffer: {{flush_interval_secs: 1}}
telemetry: {{listen: "127.0.0.1:0"}}
shutdown_deadline_secs: 1
"""
LINE = b'{"log":"hello\\n","stream":"stdout","time":"2026-12-07T10:00:00.000000000Z"}\n'


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_outage_writes_one_transport_line_per_window_under_our_event(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / f"p_ns_c-{'ab' * 32}.log").write_bytes(LINE * 3)
    config = tmp_path / "shipper.yaml"
    config.write_text(CONFIG.format(state=tmp_path / "state", logs=logs, port=closed_port()))
    proc = subprocess.Popen([sys.executable, "-m", "shipper.cli", "run", "-c", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(4)  # the transport fails the node about five times in 3 s
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    lines = [orjson.loads(x) for x in err.splitlines() if x.startswith(b"{")]
    events = [x["event"] for x in lines]
    assert not [e for e in events if e.startswith("elastic_transport")], events
    node = [x for x in lines if x["event"] == "es_node_failed"]
    assert node and all(x["library"] == "elastic_transport.node_pool" for x in node)
    # One line at once, the rest counted and written once when the agent stops.
    assert len(node) == 2, node
    assert node[0].get("repeated") is None and node[1]["repeated"] >= 2, node
