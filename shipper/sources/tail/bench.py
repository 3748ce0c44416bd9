"""Micro-benchmark of the decoders: lines per second on ~270-byte lines.

Not a test (timings depend on the machine). Run ``python -m shipper.sources.tail.bench``.
Batches of ``max_batch_records`` lines are decoded and dropped, as in the source, so the
garbage collector sees the same allocation pattern as in production.
"""

from __future__ import annotations

import time

import orjson

from shipper.sources.tail.formats import CriDecoder, Decoder, DockerDecoder
from shipper.sources.tail.paths import parse_path

_PATH = "/var/log/containers/web-7d4b9c-x2x_default_nginx-" + "0123456789abcdef" * 4 + ".log"


def sample_lines(fmt: str, count: int, message_bytes: int = 200) -> list[bytes]:
    """``count`` lines of one format, about ``message_bytes + 70`` bytes each."""
    lines = []
    for i in range(count):
        ts = f"2024-01-01T12:{(i // 60_000) % 60:02d}:{(i // 1000) % 60:02d}.{i:09d}Z"
        msg = f"GET /api/v1/items/{i} 200 " + "x" * (message_bytes - 30)
        if fmt == "cri":
            lines.append(f"{ts} stdout F {msg}".encode())
        else:
            lines.append(orjson.dumps({"log": msg + "\n", "stream": "stdout", "time": ts}))
    return lines


def bench_decode(fmt: str, lines: int = 200_000, batch: int = 2000) -> float:
    """Decode ``lines`` lines of ``fmt`` ("cri" or "docker"); return lines per second."""
    data = sample_lines(fmt, batch)
    static = parse_path(_PATH, "kube").static_fields()
    cls: type[Decoder] = CriDecoder if fmt == "cri" else DockerDecoder
    decoder = cls("0123456789abcdef", static, 1024 * 1024)
    rounds = max(1, lines // batch)
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        records, _ = decoder.decode(data, 0)
        best = min(best, time.perf_counter() - started)
        del records
    return batch / best


def main() -> None:
    for fmt in ("cri", "docker"):
        size = sum(map(len, sample_lines(fmt, 100))) / 100
        rate = bench_decode(fmt)
        print(f"{fmt:6s} {size:5.0f} B/line  {rate:10,.0f} lines/s  {1e6 / rate:5.2f} µs/line")


if __name__ == "__main__":
    main()
