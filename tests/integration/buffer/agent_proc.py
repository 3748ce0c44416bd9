"""Running the real agent as a process with a disk buffer, and checking the index after.

Used by the crash and outage tests: the agent is ``python -m shipper.cli run -c cfg``, killed
with SIGKILL or a named crash point, restarted, and finally stopped with SIGTERM. The index
is then read back in full: every sequence-numbered line (``seq=<file>:<n>``, written by the
node log generator) must be there exactly once.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

from shipper.demo.embedded_es import wait_for_http
from shipper.demo.esquery import SearchClient
from shipper.demo.manifest import Manifest

DAY = "2026.11.22"

CONFIG = """\
state_dir: {state}
sources:
  containers:
    type: tail
    include: {includes}
    read_from_head: true
    refresh_interval_secs: 0.5
    checkpoint_interval_secs: 0.2
outputs:
  es:
    type: elasticsearch
    hosts: ["{url}"]
    logstash_prefix: {prefix}
    template_name: {prefix}
    request_timeout_secs: {request_timeout}
    buffer: {{type: disk, fsync: {fsync}, fsync_interval_secs: 0.1, chunk_limit_bytes: {chunk},
              total_limit_bytes: {limit}, flush_interval_secs: 0.2, retry_initial_secs: 0.05,
              retry_max_secs: 0.5}}
telemetry: {{listen: "127.0.0.1:{port}"}}
shutdown_deadline_secs: {deadline}
"""

_SEQ = re.compile(r"seq=(\d+):(\d+)")


def write_config(path: Path, *, state: Path, logs: Path | list[Path], url: str, prefix: str,
                 port: int, fsync: str = "interval", limit: str = "256KiB",
                 deadline: float = 10, chunk: str = "64KiB", request_timeout: float = 2) -> Path:
    dirs = logs if isinstance(logs, list) else [logs]
    includes = "[" + ", ".join(f'"{d}/*.log"' for d in dirs) + "]"
    path.write_text(CONFIG.format(state=state, includes=includes, url=url, prefix=prefix,
                                  port=port, fsync=fsync, limit=limit, deadline=deadline,
                                  chunk=chunk, request_timeout=request_timeout))
    return path


def start(cfg: Path, log: Path, crashpoint: str | None = None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "SHIPPER_CRASHPOINT"}
    if crashpoint:
        env["SHIPPER_CRASHPOINT"] = crashpoint
    return subprocess.Popen([sys.executable, "-m", "shipper.cli", "run", "-c", str(cfg)],
                            stderr=open(log, "ab"), stdout=subprocess.DEVNULL, env=env)


def metric(port: int, name: str, label: str = "") -> float:
    """Sum of the samples of ``name`` (whose label text contains ``label``); -1 if down."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return -1.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and label in line)


def wait_healthy(proc: subprocess.Popen[bytes], port: int) -> None:
    wait_for_http(f"http://127.0.0.1:{port}/healthz", 60, proc)


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout)


def kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(10)


Marker = tuple[str, int, int]  # (container id, file index, record index)


def expected_markers(*manifests: Manifest) -> Counter[Marker]:
    return Counter((f.container_id, f.index, n) for m in manifests for f in m.files
                   for n in range(f.records))


def indexed_markers(es: SearchClient, index: str) -> Counter[Marker]:
    """Every ``seq=`` marker in the index with its container, counted (paged, bounded)."""
    es.refresh(index)
    found: Counter[Marker] = Counter()
    after: list[object] | None = None
    for _ in range(1000):
        body: dict[str, object] = {"size": 5000, "_source": ["log", "docker.container_id"],
                                   "sort": [{"_doc": "asc"}]}
        if after is not None:
            body["search_after"] = after
        hits = es.request("POST", f"/{index}/_search", body)["hits"]["hits"]
        if not hits:
            return found
        for hit in hits:
            src = hit["_source"]
            m = _SEQ.search(src.get("log", ""))
            cid = src.get("docker", {}).get("container_id", "")
            found[(cid, int(m.group(1)), int(m.group(2))) if m else (cid, -1, -1)] += 1
        after = hits[-1]["sort"]
    raise AssertionError("index larger than expected")


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def wait_for_count(es: SearchClient, index: str, expected: int, proc: subprocess.Popen[bytes],
                   timeout_secs: float) -> None:
    deadline = time.monotonic() + timeout_secs
    while True:
        es.refresh(index)
        count = es.count(index)
        if count >= expected:
            return
        assert proc.poll() is None, f"agent exited ({proc.returncode}) at {count}/{expected}"
        assert time.monotonic() < deadline, f"only {count}/{expected} indexed in time"
        time.sleep(0.5)


def crash_lines(log: Path) -> list[str]:
    return [line for line in log.read_text(errors="replace").splitlines()
            if '"event":"crashpoint"' in line]
