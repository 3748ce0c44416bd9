"""Lines without a time of their own take the carried time: never the read time.

The Elasticsearch index name comes from a record's time. A line re-read after a crash (the
bulk was accepted, the checkpoint not written) gets the same ``_id`` and must land in the
same index, or ``create`` stores it twice instead of answering 409. These tests read a file,
acknowledge a prefix, persist the checkpoint, "crash" and read it again a minute later (a
fake wall clock) with per-minute indices, and compare where every document goes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from outputs.elasticsearch.config import ElasticsearchConfig
from outputs.elasticsearch.request import BulkEncoder
from shipper.sources.tail import reader as reader_module
from shipper.sources.tail.checkpoints import CheckpointStore
from shipper.sources.tail.config import TailConfig
from shipper.sources.tail.formats import CriDecoder
from shipper.sources.tail.paths import parse_path
from shipper.sources.tail.reader import FileReader
from shipper.sources.tail.timestamps import parse_time

CID = "0123456789abcdef" * 4
MINUTE = 60 * 1_000_000_000
# The agent first sees the file a minute before its lines: a restart that lost the carried
# time and fell back on the first-seen time would index into another minute too.
FIRST_READ = parse_time("2024-01-01T11:59:30.000000000Z")[0]  # type: ignore[index]
ENCODER = BulkEncoder(ElasticsearchConfig(logstash_dateformat="%Y.%m.%d.%H.%M"))


class WallClock:
    """Stands in for ``time.time_ns`` in the reader (first-seen times of files)."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def cri(ts: str, text: str, tag: str = "F") -> bytes:
    return f"2024-01-01T12:{ts}Z stdout {tag} {text}\n".encode()


def read_file(path: Path, state: Path, acked: int) -> dict[str, str]:
    """Read the whole file one line per batch, acknowledge the first ``acked`` batches, write
    the checkpoint; return ``doc_id -> index`` of every record read."""
    store = CheckpointStore(state)
    store.load()
    st = path.stat()
    reader = FileReader(str(path), str(path), st.st_dev, st.st_ino,
                        parse_path(str(path), "kube"), TailConfig(include=[str(path)]),
                        from_head=True, lineage=str(path))
    reader.attach(os.open(path, os.O_RDONLY))
    try:
        reader.identify(store)
        assert reader.tracker is not None and reader.identity is not None
        tokens, records = [], []
        for _ in range(100):
            chunks = list(reader.read(max_batch=1))
            if not chunks:
                break
            for chunk in chunks:
                records += chunk.records
                tokens.append(reader.tracker.add(chunk.safe_offset, chunk.carry))
        for token in tokens[:acked]:
            reader.tracker.ack(token)
        store.set_offset(reader.identity, reader.tracker.committed, reader.tracker.carry)
        store.write(store.snapshot())
    finally:
        reader.close()
    return {record.doc_id: ENCODER.index_name(record.time_ns) for record in records
            if record.doc_id is not None}


LINES = [
    cri("00:59.900000000", "before the minute"),
    b"garbage without a timestamp\n",
    cri("01:00.100000000", "after the minute"),
    cri("01:00.200000000", "first piece ", tag="P"),
    b"more garbage\n",
    cri("01:00.300000000", "last piece"),
    b"garbage after a joined message\n",
]


@pytest.mark.parametrize("acked", range(len(LINES)))
def test_a_replay_from_any_checkpoint_indexes_every_line_where_the_first_read_did(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, acked: int) -> None:
    clock = WallClock(FIRST_READ)
    monkeypatch.setattr(reader_module.time, "time_ns", clock)
    path = tmp_path / f"web_default_nginx-{CID}.log"
    path.write_bytes(b"".join(LINES))
    first = read_file(path, tmp_path / "state", acked)
    clock.now += MINUTE  # the replay happens in the next minute
    replay = read_file(path, tmp_path / "state", len(LINES))
    assert replay  # something was replayed (at least the unacknowledged tail)
    for doc_id, index in replay.items():
        assert first[doc_id] == index, doc_id
    assert len(set(first.values())) == 2  # the lines are about a minute boundary


def test_a_file_that_starts_with_garbage_uses_its_first_seen_time_after_a_restart(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = WallClock(FIRST_READ)
    monkeypatch.setattr(reader_module.time, "time_ns", clock)
    path = tmp_path / f"web_default_nginx-{CID}.log"
    path.write_bytes(b"no timestamp here\nnor here\n" + cri("01:00.100000000", "x"))
    first = read_file(path, tmp_path / "state", 0)  # the entry is written, nothing acked
    clock.now += MINUTE
    replay = read_file(path, tmp_path / "state", 3)
    assert replay == first
    assert sorted(first.values()) == ["logstash-2024.01.01.11.59", "logstash-2024.01.01.11.59",
                                      "logstash-2024.01.01.12.01"]


def test_a_malformed_line_is_timed_by_the_line_before_it_in_every_decoder_path() -> None:
    static = parse_path(f"/var/log/containers/web_default_nginx-{CID}.log", "k").static_fields()
    decoder = CriDecoder("ident", static, 1024, carry_ns=7)
    lines = [b"garbage", cri("00:59.900000000", "fast path")[:-1], b"bad 1",
             b"2024-01-01T13:01:00.5+01:00 stdout F slow path (zone offset)", b"bad 2"]
    records, _ = decoder.decode(lines, 0)
    times = [r.time_ns for r in records]
    assert times[0] == 7  # before any timestamped line: the entry's time
    assert times[2] == times[1] and times[4] == times[3] != times[1]
    bad = records[2]
    assert bad.body["time"] == "2024-01-01T12:00:59.900000000Z"
    assert bad.body["shipper"] == {"flags": ["malformed"]}
    assert decoder.carry_ns == times[3] and decoder.safe_point(99) == (99, times[3])


def test_an_open_group_holds_the_checkpoint_with_the_time_carried_before_it() -> None:
    static = parse_path(f"/var/log/containers/web_default_nginx-{CID}.log", "k").static_fields()
    decoder = CriDecoder("ident", static, 1024)
    one = cri("00:59.900000000", "one")[:-1]
    piece = cri("01:00.100000000", "piece ", tag="P")[:-1]
    records, end = decoder.decode([one, piece, b"garbage"], 0)
    assert decoder.safe_point(end) == (len(one) + 1, records[0].time_ns)
    assert records[1].time_ns == parse_time("2024-01-01T12:01:00.1Z")[0]  # type: ignore[index]

