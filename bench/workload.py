"""The standard benchmark workload: a node log tree every benchmark run reads the same way.

Defaults: 1,000,000 logical lines in 50 container log files (25 docker json-file, 25 CRI),
about 270 bytes per physical line (~270 MB), mixing Istio/Envoy access logs, istiod lines,
JSON application logs and Java stack traces, with one line in 10,000 longer than 16 KiB
(written as partial lines). Fixing these numbers is what makes results comparable between
commits; change them only together with the published baseline.

    python -m bench.workload --out DIR [--lines 1000000] [--seed 7] [--files 50]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from shipper.demo.formats import FORMATS, LogFormat
from shipper.demo.loggen import generate_node_logs
from shipper.demo.manifest import Manifest

DEFAULT_LINES = 1_000_000
DEFAULT_SEED = 7
DEFAULT_FILES = 50
LONG_LINE_EVERY = 10_000
MANIFEST_NAME = "workload.json"


def generate_workload(
    root: Path,
    *,
    lines: int = DEFAULT_LINES,
    seed: int = DEFAULT_SEED,
    files: int = DEFAULT_FILES,
    log_format: LogFormat | None = None,
) -> Manifest:
    """Write the benchmark workload under `root` (which must not hold a log tree yet)."""
    return generate_node_logs(
        root,
        seed=seed,
        lines=lines,
        files=files,
        log_format=log_format,
        long_line_every=LONG_LINE_EVERY,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the standard benchmark workload.")
    parser.add_argument("--out", type=Path, required=True, help="root of the node log tree")
    parser.add_argument("--lines", type=int, default=DEFAULT_LINES)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--files", type=int, default=DEFAULT_FILES)
    parser.add_argument("--format", choices=FORMATS, default=None, help="force one format")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    try:
        manifest = generate_workload(
            args.out, lines=args.lines, seed=args.seed, files=args.files, log_format=args.format
        )
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    (args.out / MANIFEST_NAME).write_text(manifest.to_json())

    per_record = manifest.total_bytes / manifest.total_records if manifest.total_records else 0.0
    print(manifest.summary())
    print(
        f"lines={manifest.total_records:,} bytes={manifest.total_bytes:,} "
        f"files={len(manifest.files)} avg_bytes_per_record={per_record:.1f} "
        f"generated_in={elapsed:.2f}s manifest={args.out / MANIFEST_NAME}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
