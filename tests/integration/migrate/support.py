"""Helpers for the migrate-fluentd round trips: a converted config made to run here.

A converted config names the node's real paths, the cluster's hosts and fixed ports. The tests
keep everything the conversion produced and change only what points outside the test: the
files the tail sources read, state_dir, listen addresses, the Elasticsearch host and index
names, the Kubernetes API (a local one serving the generated node's pods) and the Logz.io
listener. The YAML text the command wrote is read back, edited as data and validated by the
agent's own loader.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from shipper.app import Agent, parse_agent_config
from shipper.config.model import AgentConfig
from shipper.demo.k8s_api import KubeApiServer
from shipper.demo.k8s_objects import demo_objects
from shipper.demo.manifest import Manifest
from shipper.migrate import migrate

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "fluentd"
NODE_NAME = "migrate-node-1"
FAST_BUFFER = {"flush_interval_secs": 0.2, "retry_initial_secs": 0.05, "retry_max_secs": 0.5}


def converted(path: Path) -> dict[str, Any]:
    """The command's YAML output for ``path``, as data."""
    data = yaml.safe_load(migrate(str(path)).text)
    assert isinstance(data, dict)
    return data


def localize(config: dict[str, Any], tmp: Path, logs: Path, k8s_url: str | None) -> None:
    """Point the converted config at this test's files, ports and Kubernetes API (in place)."""
    config["state_dir"] = str(tmp / "state")
    config["telemetry"] = {"listen": "127.0.0.1:0"}
    config["shutdown_deadline_secs"] = 10
    for name, source in config["sources"].items():
        if source["type"] == "tail":
            containers = any("containers" in p for p in source.get("include", []))
            source["include"] = [f"{logs}/*.log"] if containers else [str(tmp / f"{name}.log")]
            source["refresh_interval_secs"] = 0.5
        elif source["type"] == "forward":
            source["listen"] = "127.0.0.1:0"
    for filter_config in config.get("filters", {}).values():
        if filter_config["type"] == "kubernetes_metadata":
            filter_config["kubernetes_url"] = k8s_url
            filter_config["node_name"] = NODE_NAME
            filter_config.pop("ca_file", None)


def speed_up(output: dict[str, Any]) -> None:
    """Keep the converted buffer settings, but flush and retry at test speed."""
    output["buffer"] = {**output.get("buffer", {}), **FAST_BUFFER}


def load(config: dict[str, Any], environ: Mapping[str, str] | None = None) -> AgentConfig:
    return parse_agent_config(yaml.safe_dump(config, sort_keys=False), file="shipper.yaml",
                              environ=environ or {})


@contextmanager
def kubernetes_api(manifest: Manifest) -> Iterator[str]:
    """A local Kubernetes API serving the generated node's pods and namespaces."""
    api = KubeApiServer()
    api.state.load(*demo_objects(manifest, NODE_NAME))
    api.start()
    try:
        yield api.url
    finally:
        api.stop()


async def run_until(agent: Agent, done: Callable[[], bool], timeout_secs: float = 60.0,
                    while_running: Callable[[Agent], Any] | None = None) -> None:
    """Run the agent until ``done()``, then stop it the SIGTERM way."""
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    deadline = time.monotonic() + timeout_secs
    try:
        if while_running is not None:
            await while_running(agent)
        while not done():
            if task.done():
                task.result()
                raise AssertionError("the agent stopped before the records were settled")
            if time.monotonic() > deadline:
                raise AssertionError("the records were not settled in time")
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
