"""The agent refuses a buffer written by a newer shipper, clearly, and touches nothing."""

from __future__ import annotations

import subprocess
import sys

from shipper.buffer.disk.format import VERSION, encode_header
from shipper.demo.embedded_es import free_loopback_port
from tests.integration.buffer.agent_proc import write_config


def test_a_newer_buffer_format_stops_the_agent_with_a_clear_error(tmp_path):
    buffers = tmp_path / "state" / "buffers" / "es"
    buffers.mkdir(parents=True)
    segment = buffers / "0000000000000007.seg"
    segment.write_bytes(encode_header(version=VERSION + 1) + b"records of the future")
    before = segment.read_bytes()
    cfg = write_config(tmp_path / "shipper.yaml", state=tmp_path / "state", logs=tmp_path,
                       url=f"http://127.0.0.1:{free_loopback_port()}", prefix="x",
                       port=free_loopback_port())
    proc = subprocess.run([sys.executable, "-m", "shipper.cli", "run", "-c", str(cfg)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert str(segment) in proc.stderr and "newer shipper" in proc.stderr, proc.stderr
    assert segment.read_bytes() == before
    assert sorted(p.name for p in buffers.iterdir()) == [segment.name], "nothing created"
