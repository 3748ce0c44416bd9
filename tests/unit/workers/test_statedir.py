"""Changing ``workers`` re-partitions checkpoints and carries buffered segments over, so
every file resumes from its own position in the worker that now reads it."""

from __future__ import annotations

from pathlib import Path

import orjson

from shipper.buffer.disk.recovery import segment_name
from shipper.sources.tail.checkpoints import CheckpointStore, Entry
from shipper.workers.shard import shard_of
from shipper.workers.statedir import layout, prepare, read_marker

SOURCE = "containers"


def entry(real: str, offset: int) -> Entry:
    return Entry(path=real, real_path=real, key=real, dev=1, ino=abs(hash(real)) % 10**6,
                 fingerprint="f", generation=0, offset=offset, size=offset)


def real_paths(n: int = 24) -> list[str]:
    return [f"/var/log/pods/ns_pod{i}_uid/app/0.log" for i in range(n)]


def write_store(directory: Path, entries: dict[str, Entry], saved_at: float = 1000.0) -> None:
    store = CheckpointStore(directory / SOURCE)
    for ident, e in entries.items():
        store.put(ident, e)
        store.set_handled(e.real_path, {e.fingerprint, "old"}, e.path)
    doc = orjson.loads(store.snapshot())
    doc["saved_at"] = saved_at
    store.write(orjson.dumps(doc))


def load(directory: Path) -> CheckpointStore:
    store = CheckpointStore(directory / SOURCE)
    store.load()
    return store


def all_offsets(state: Path, count: int) -> dict[str, tuple[int, int]]:
    """identity -> (worker index holding it, offset)."""
    found = {}
    for index, directory in enumerate(layout(state, count)):
        for ident, e in load(directory).entries.items():
            assert ident not in found, "an entry in two workers"
            found[ident] = (index, e.offset)
    return found


def test_one_to_n_and_back_keeps_every_position_in_the_owning_worker(tmp_path):
    state = tmp_path / "state"
    entries = {f"id{i}": entry(p, 100 + i) for i, p in enumerate(real_paths())}
    write_store(state, entries)
    for count in (2, 3, 1):
        assert prepare(state, count, [SOURCE])
        assert read_marker(state) == count
        found = all_offsets(state, count)
        assert {ident: off for ident, (_, off) in found.items()} == {
            ident: e.offset for ident, e in entries.items()}
        for ident, (index, _) in found.items():
            assert index == shard_of(entries[ident].real_path, count)
        for directory in layout(state, count):
            store = load(directory)
            assert set(store.lineages) == {e.real_path for e in store.entries.values()}
            assert store.saved_at == 1000.0, "the oldest save time is kept"
    assert not list(state.glob("worker-*/containers/positions.json")), "nothing stale left"


def test_a_second_start_with_the_same_count_changes_nothing(tmp_path):
    state = tmp_path / "state"
    write_store(state, {"a": entry(real_paths()[0], 5)})
    assert prepare(state, 2, [SOURCE])
    assert not prepare(state, 2, [SOURCE])
    assert not prepare(tmp_path / "fresh", 1, [SOURCE]), "a single agent: as always"
    assert not (tmp_path / "fresh").exists()


def test_the_lower_offset_wins_when_two_directories_know_a_file(tmp_path):
    state = tmp_path / "state"
    real = real_paths()[3]
    write_store(state, {"same": entry(real, 500)})
    write_store(state / "worker-1", {"same": entry(real, 200)})
    prepare(state, 2, [SOURCE])
    assert all_offsets(state, 2)["same"] == (shard_of(real, 2), 200)


def test_buffered_segments_of_a_retired_directory_move_to_a_running_worker(tmp_path):
    state = tmp_path / "state"
    old = state / "worker-2" / "buffers" / "es"
    old.mkdir(parents=True)
    for seq in (1, 2):
        (old / segment_name(seq)).write_bytes(b"segment %d" % seq)
    kept = state / "worker-0" / "buffers" / "es"
    kept.mkdir(parents=True)
    (kept / segment_name(7)).write_bytes(b"worker 0's own")
    (state / "workers.json").write_text('{"workers": 3}')
    assert prepare(state, 2, [SOURCE])  # worker-2 is gone: 2 % 2 = worker 0 takes them
    assert sorted(p.name for p in kept.iterdir()) == [segment_name(s) for s in (7, 8, 9)]
    assert (kept / segment_name(8)).read_bytes() == b"segment 1"
    assert not list(old.glob("*.seg"))
    assert not prepare(state, 2, [SOURCE])
