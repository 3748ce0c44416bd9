"""What a worker process runs: its own state directory, loopback telemetry, and the
non-tail sources only in worker 0."""

from __future__ import annotations

import pytest

from shipper.app import parse_agent_config
from shipper.errors import ConfigError
from shipper.workers.role import WorkerRole, read_port_file, worker_config, write_port_file

CONFIG = """\
workers: 2
state_dir: /data/shipper
sources:
  containers: {type: tail}
  apps: {type: forward, listen: "0.0.0.0:24224"}
outputs:
  out: {type: stdout}
telemetry:
  listen: "0.0.0.0:24231"
  tap: {enabled: true, listen: "0.0.0.0:24232"}
"""


def test_each_worker_gets_its_state_dir_and_a_loopback_telemetry_port():
    config = parse_agent_config(CONFIG, file="shipper.yaml")
    for index in (0, 1):
        own = worker_config(config, WorkerRole(index, 2))
        assert own.state_dir == f"/data/shipper/worker-{index}"
        assert own.telemetry.listen == "127.0.0.1:0"
        assert own.telemetry.tap.enabled and own.telemetry.tap.listen == ""
        assert own.outputs == config.outputs


def test_the_forward_source_runs_in_worker_0_only():
    config = parse_agent_config(CONFIG, file="shipper.yaml")
    assert list(worker_config(config, WorkerRole(0, 2)).sources) == ["containers", "apps"]
    assert list(worker_config(config, WorkerRole(1, 2)).sources) == ["containers"]


def test_the_role_comes_from_the_environment():
    assert WorkerRole.from_env({}) is None
    assert WorkerRole.from_env({"SHIPPER_WORKER": "1/3"}) == WorkerRole(1, 3)
    for bad in ("3/3", "x/2", "1"):
        with pytest.raises(ConfigError, match="expected <index>/<count>"):
            WorkerRole.from_env({"SHIPPER_WORKER": bad})


def test_the_port_file_is_only_believed_for_the_process_that_wrote_it(tmp_path):
    import os

    path = tmp_path / "telemetry.json"
    assert read_port_file(path, os.getpid()) is None
    write_port_file(path, 41234)
    assert read_port_file(path, os.getpid()) == 41234
    assert read_port_file(path, os.getpid() + 1) is None, "a previous worker's file"
