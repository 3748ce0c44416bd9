"""Coverage-guided fuzz target (atheris) of the compiled per-line loops.

Each input becomes a file's worth of lines, decoded as Docker json-file and as CRI by the
compiled loop and by the Python loop, in reads cut where the input says, then encoded to bulk
payloads by both encoders. A crash of the extension, an exception from one side only, or any
difference in records, state or payloads is a finding (and a release blocker).

    python tests/fuzz/speedups_target.py [corpus_dir] -runs=100000

Guidance comes from the instrumented Python code around the extension (the fallback paths the
compiled loop hands lines to); the seed corpus (``seeds()``) starts it from well-formed lines.
"""

from __future__ import annotations

import sys
from typing import Any

import atheris

with atheris.instrument_imports():
    import orjson

    from outputs.elasticsearch.config import ElasticsearchConfig
    from outputs.elasticsearch.request import BodySerializer, BulkEncoder
    from shipper.sources.tail.formats import CriDecoder, Decoder, DockerDecoder
from shipper import _speedups  # type: ignore[attr-defined]

IDENT = "0123456789abcdef"
STATIC: dict[str, Any] = {"tag": "kubernetes.var.log.containers.x", "kubernetes": {"pod_name": "p"},
                          "docker": {"container_id": "c"}}
CONFIG = ElasticsearchConfig(hosts=["http://127.0.0.1:9200"])


def seeds() -> list[bytes]:
    """Well-formed starting points: Docker and CRI lines, escapes, pieces."""
    docker = [orjson.dumps({"log": text, "stream": stream, "time": ts})
              for text, stream, ts in [("hello\n", "stdout", "2024-01-01T12:00:00.123456789Z"),
                                       ('a"\\/\u00e9\U0001f600\t\n', "stderr",
                                        "2024-01-01T12:00:00.5Z"),
                                       ("piece", "stdout", "2024-01-01T12:00:01.1Z")]]
    cri = [b"2024-01-01T12:00:00.123456789Z stdout F hello world",
           b"2024-01-01T12:00:00.123456789Z stderr P part one ",
           b"2024-01-01T12:00:01.000000001Z stderr F and two\r"]
    return [b"\x20\x03" + b"\n".join(docker), b"\x08\x01" + b"\n".join(cri),
            b"\x10\x02" + b"\n".join(docker + cri)]


def _run(cls: type[Decoder], lines: list[bytes], cut: int, max_bytes: int,
         compiled: bool) -> tuple[Any, ...]:
    decoder = cls(IDENT, STATIC, max_bytes, carry_ns=1_700_000_000_000_000_000)
    fast = _speedups.decode_cri if cls is CriDecoder else _speedups.decode_docker
    records: list[Any] = []
    offset = 0
    states = []
    for batch in (lines[:cut], lines[cut:]):
        if compiled:
            out, offset = fast(decoder, batch, offset, decoder._decode_py)
        else:
            out, offset = decoder._decode_py(batch, offset)
        records += out
        states.append((offset, decoder.carry_ns, decoder.initial, decoder.used_initial,
                       dict(decoder.flags), sorted(decoder.partials.groups),
                       decoder.safe_point(0)))
    records += decoder.flush()
    encoder = BulkEncoder(CONFIG)
    if compiled:
        payloads = _speedups.encode_bulk(records, encoder._second_parts, encoder._parts_for,
                                         BodySerializer().dumps, encoder._one)
    else:
        payloads = encoder._encode_py(records)
    return ([(r.body, r.time_ns, r.tag, r.doc_id) for r in records], states, payloads)


def _outcome(cls: type[Decoder], lines: list[bytes], cut: int, max_bytes: int,
             compiled: bool) -> Any:
    try:
        return _run(cls, lines, cut, max_bytes, compiled)
    except Exception as exc:  # both sides must fail alike
        return ("raised", type(exc).__name__)


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    max_bytes = 1 + data[0] % 64 if data[0] < 128 else 16 * 1024
    cut = data[1]
    lines = data[2:].split(b"\n")
    for cls in (DockerDecoder, CriDecoder):
        reference = _outcome(cls, lines, cut, max_bytes, compiled=False)
        candidate = _outcome(cls, lines, cut, max_bytes, compiled=True)
        if candidate != reference:
            raise AssertionError(f"{cls.__name__} differs on {data!r}:\n"
                                 f"python:   {reference!r}\ncompiled: {candidate!r}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
