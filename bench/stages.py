"""Per-stage cost of the hot path, in-process: split, decode, enrich, Envoy, encode.

The whole-process runner (``bench.run``) says how much the agent costs; this one says where
it goes, in microseconds per line, without asyncio, sockets or threads in the way. It reads
the standard workload's files (a prefix of each), serves the pods from a warm metadata cache,
and runs each stage over the same batches the tail would build.

    python -m bench.stages [--lines 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from outputs.elasticsearch.config import ElasticsearchConfig
from outputs.elasticsearch.request import BulkEncoder
from shipper.demo.k8s_objects import demo_objects
from shipper.filters.envoy import EnvoyAccessLogConfig, EnvoyAccessLogFilter
from shipper.filters.kubernetes.config import KubernetesMetadataConfig
from shipper.filters.kubernetes.filter import KubernetesMetadataFilter
from shipper.gctuning import tune_for_throughput
from shipper.metrics import Metrics
from shipper.record import Record
from shipper.sources.tail.formats import detect_format, make_decoder
from shipper.sources.tail.paths import parse_path

BATCH = 2000
NODE = "bench-node-1"


def _timed(fn: Callable[[], Any], repeat: int) -> float:
    """Best of ``repeat`` runs, in seconds (the least disturbed by other work)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        fn()
        best = min(best, time.process_time() - started)
    return best


def load_files(root: Path) -> list[tuple[str, bytes]]:
    logs = root / "var" / "log" / "containers"
    return [(str(p), p.read_bytes()) for p in sorted(logs.glob("*.log"))]


def split(data: bytes) -> list[list[bytes]]:
    lines = data[:data.rfind(b"\n")].split(b"\n")
    return [lines[i:i + BATCH] for i in range(0, len(lines), BATCH)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    from bench.workload import generate_workload

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "node"
        manifest = generate_workload(root, lines=args.lines, seed=args.seed, files=args.files)
        files = load_files(root)
    namespaces, pods = demo_objects(manifest, NODE)

    metrics = Metrics()
    k8s = KubernetesMetadataFilter("k8s", KubernetesMetadataConfig(node_name=NODE), metrics)
    k8s.cache.replace_namespaces(
        [n for n in map(k8s.extractor.namespace, namespaces) if n is not None], 0.0)
    k8s.cache.replace_pods([p for p in map(k8s.extractor.pod, pods) if p is not None], 0.0)
    envoy = EnvoyAccessLogFilter("envoy", EnvoyAccessLogConfig(), metrics)
    encoder = BulkEncoder(ElasticsearchConfig(hosts=["http://127.0.0.1:9200"]))

    tune_for_throughput()  # as the agent does once it is built
    total_lines = sum(data.count(b"\n") for _, data in files)
    batches_of: list[tuple[Any, list[list[bytes]]]] = []

    def do_split() -> None:
        batches_of.clear()
        for path, data in files:
            meta = parse_path(path, "kubernetes")
            decoder = make_decoder(detect_format(data[:4096]), f"id{len(batches_of)}",
                                   meta.static_fields(), 16 * 1024)
            batches_of.append((decoder, split(data)))

    decoded: list[list[Record]] = []

    def do_decode() -> None:
        decoded.clear()
        now = time.time_ns()
        for decoder, batches in batches_of:
            offset = 0
            for lines in batches:
                records, offset = decoder.decode(lines, offset, now)
                decoded.append(records)
            decoded.append(decoder.flush())

    def do_k8s() -> None:
        for records in decoded:
            k8s.process(records)

    def do_envoy() -> None:
        for records in decoded:
            envoy.process(records)

    def do_encode() -> None:
        for records in decoded:
            encoder.encode(records)

    results = [("split", _timed(do_split, args.repeat))]
    results.append(("decode", _timed(do_decode, 1)))
    # Filters change records in place: measure each once, on fresh records, then encode.
    results.append(("enrich (kubernetes_metadata)", _timed(do_k8s, 1)))
    results.append(("envoy_access_log", _timed(do_envoy, 1)))
    results.append(("encode (bulk)", _timed(do_encode, args.repeat)))
    records = sum(len(r) for r in decoded)
    print(f"{total_lines:,} physical lines, {records:,} records, {len(files)} files, "
          f"pid {os.getpid()}")
    total = 0.0
    for name, secs in results:
        total += secs
        print(f"  {name:<30} {secs * 1e6 / total_lines:6.2f} µs/line")
    print(f"  {'total':<30} {total * 1e6 / total_lines:6.2f} µs/line "
          f"(= CPU-s per million lines)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
