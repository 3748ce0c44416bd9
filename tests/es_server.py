"""A real Elasticsearch for integration tests, from the cheapest source available.

In order: the URL in ``SHIPPER_TEST_ES_URL`` (a server you run yourself); a throwaway
container when a Docker engine answers; else the embedded ``noida-db`` server installed with
the test dependencies, on a free loopback port with a temporary data directory. The caller gets
a base URL that already answers ``GET /`` and everything started here is stopped on exit.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from shipper.demo.embedded_es import EmbeddedElasticsearch
from shipper.errors import ShipperError

ENV_URL = "SHIPPER_TEST_ES_URL"
ENV_IMAGE = "SHIPPER_TEST_ES_IMAGE"
DEFAULT_IMAGE = "docker.elastic.co/elasticsearch/elasticsearch:8.15.3"
START_TIMEOUT_SECS = 30.0


def answers(url: str, timeout: float = 1.0) -> bool:
    """True when ``GET /`` on ``url`` returns 2xx."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/", timeout=timeout) as resp:
            return 200 <= resp.status < 300
    except (OSError, urllib.error.URLError, ValueError):
        return False


def docker_available(timeout: float = 2.0) -> bool:
    """A Docker engine answers a ping quickly (any failure means no)."""
    try:
        import docker  # type: ignore[import-untyped]

        client = docker.from_env(timeout=int(max(1, timeout)))
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no socket, no permission, no package: all mean "not available"
        return False


@contextlib.contextmanager
def _container() -> Iterator[str]:
    from testcontainers.community.elasticsearch import ElasticSearchContainer

    image = os.environ.get(ENV_IMAGE, DEFAULT_IMAGE)
    container = (ElasticSearchContainer(image, mem_limit="2G")
                 .with_env("discovery.type", "single-node")
                 .with_env("ES_JAVA_OPTS", "-Xms512m -Xmx512m"))
    with container as es:
        yield f"http://{es.get_container_host_ip()}:{es.get_exposed_port(es.port)}"


@contextlib.contextmanager
def _noida() -> Iterator[str]:
    last_error: Exception | None = None
    for _attempt in range(3):  # the free port can be taken between probe and bind
        with tempfile.TemporaryDirectory(prefix="shipper-es-") as data_dir:
            server = EmbeddedElasticsearch(Path(data_dir) / "data",
                                           log_file=Path(data_dir) / "server.log")
            try:
                server.start(timeout_secs=START_TIMEOUT_SECS)
            except ShipperError as exc:
                last_error = exc
                continue
            try:
                yield server.url
                return
            finally:
                server.stop()
    raise RuntimeError(f"noida-db did not start: {last_error}")


@contextlib.contextmanager
def elasticsearch_url() -> Iterator[str]:
    """Yield the base URL of a running Elasticsearch (see the module docstring for the order)."""
    url = os.environ.get(ENV_URL)
    if url:
        yield url.rstrip("/")
        return
    if docker_available():
        with _container() as container_url:
            yield container_url
        return
    with _noida() as noida_url:
        yield noida_url
