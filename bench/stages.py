"""Per-stage cost of the hot path, in-process: split, decode, enrich, Envoy, encode.

The whole-process runner (``bench.run``) says how much the agent costs; this one says where
it goes, in microseconds per line, without asyncio, sockets or threads in the way. It reads
the standard workload's files (a prefix of each), serves the pods from a warm metadata cache,
and runs each stage over the same batches the tail would build.

    python -m bench.stages [--lines 200000] [--repeat 3]

The decode and encode stages run the compiled loops when the extension is built, the Python
ones with ``SHIPPER_PURE_PYTHON=1`` (``bench.run`` measures both).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from outputs.elasticsearch.config import ElasticsearchConfig
from outputs.elasticsearch.request import BulkEncoder
from shipper.demo.k8s_objects import demo_objects
from shipper.filters.envoy import EnvoyAccessLogConfig, EnvoyAccessLogFilter
from shipper.filters.kubernetes.config import KubernetesMetadataConfig
from shipper.filters.kubernetes.filter import KubernetesMetadataFilter
from shipper.metrics import Metrics
from shipper.sources.tail.formats import detect_format, make_decoder
from shipper.sources.tail.paths import parse_path
from shipper.speedups import IMPLEMENTATION
from shipper.tuning import tune_for_throughput

BATCH = 2000
NODE = "bench-node-1"


def load_files(root: Path) -> list[tuple[str, bytes]]:
    logs = root / "var" / "log" / "containers"
    return [(str(p), p.read_bytes()) for p in sorted(logs.glob("*.log"))]


def split(data: bytes) -> list[list[bytes]]:
    lines = data[:data.rfind(b"\n")].split(b"\n")
    return [lines[i:i + BATCH] for i in range(0, len(lines), BATCH)]


STAGES = ("split", "decode", "enrich (kubernetes_metadata)", "envoy_access_log",
          "encode (bulk)")


def measure_stages(lines: int = 200_000, files: int = 50, seed: int = 7,
                   repeat: int = 3) -> tuple[int, dict[str, float]]:
    """(physical lines, µs per line of each stage): the best of ``repeat`` passes.

    Batch by batch, in pipeline order, as the agent runs them: a batch's records are still in
    the CPU caches when the next stage takes them (measuring each stage over the whole
    workload first would count cache misses the agent does not have).
    """
    from bench.workload import generate_workload

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "node"
        manifest = generate_workload(root, lines=lines, seed=seed, files=files)
        contents = load_files(root)
    namespaces, pods = demo_objects(manifest, NODE)

    metrics = Metrics()
    k8s = KubernetesMetadataFilter("k8s", KubernetesMetadataConfig(node_name=NODE), metrics)
    k8s.cache.replace_namespaces(
        [n for n in map(k8s.extractor.namespace, namespaces) if n is not None], 0.0)
    k8s.cache.replace_pods([p for p in map(k8s.extractor.pod, pods) if p is not None], 0.0)
    envoy = EnvoyAccessLogFilter("envoy", EnvoyAccessLogConfig(), metrics)
    encoder = BulkEncoder(ElasticsearchConfig(hosts=["http://127.0.0.1:9200"]))
    tune_for_throughput()  # as the agent does once it is built
    total_lines = sum(data.count(b"\n") for _, data in contents)
    clock = time.process_time

    def one_pass() -> list[float]:
        spent = [0.0] * len(STAGES)
        for index, (path, data) in enumerate(contents):
            started = clock()
            meta = parse_path(path, "kubernetes")
            decoder = make_decoder(detect_format(data[:4096]), f"{index:016x}",
                                   meta.static_fields(), 16 * 1024)
            batches = split(data)
            spent[0] += clock() - started
            offset = 0
            for batch in [*batches, None]:
                t0 = clock()
                if batch is None:
                    records = decoder.flush()
                else:
                    records, offset = decoder.decode(batch, offset)
                t1 = clock()
                records = k8s.process(records)
                t2 = clock()
                records = envoy.process(records)
                t3 = clock()
                encoder.encode(records)
                t4 = clock()
                spent[1] += t1 - t0
                spent[2] += t2 - t1
                spent[3] += t3 - t2
                spent[4] += t4 - t3
        return spent

    best = min((one_pass() for _ in range(repeat)), key=sum)
    return total_lines, {name: secs * 1e6 / total_lines for name, secs in zip(STAGES, best,
                                                                              strict=True)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true",
                        help="print {implementation, lines, costs} as JSON (for bench.run)")
    args = parser.parse_args(argv)
    total_lines, costs = measure_stages(args.lines, args.files, args.seed, args.repeat)
    if args.json:
        print(json.dumps({"implementation": IMPLEMENTATION, "lines": total_lines,
                          "costs": costs}))
        return 0
    print(f"per-line implementation: {IMPLEMENTATION} (SHIPPER_PURE_PYTHON=1 for the other)")
    print(f"{total_lines:,} physical lines, {args.files} files (best of {args.repeat})")
    for name, us in costs.items():
        print(f"  {name:<30} {us:6.2f} µs/line")
    print(f"  {'total':<30} {sum(costs.values()):6.2f} µs/line (= CPU-s per million lines)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
