"""Checkpoint store: identity matching, atomic persistence, corrupt-file recovery."""

import os
from pathlib import Path

import orjson
import pytest

from shipper.errors import StorageError
from shipper.sources.tail.checkpoints import CheckpointStore, Entry


def entry(offset: int = 10, dev: int = 1, ino: int = 2, fp: str = "fp", key: str = "cid",
          generation: int = 0) -> Entry:
    return Entry("/p", "/real", key, dev, ino, fp, generation, offset)


def test_find_matches_only_the_same_key_device_inode_and_fingerprint() -> None:
    store = CheckpointStore(Path("/nonexistent"))
    store.put("a", entry())
    assert store.find("cid", 1, 2, "fp") == ("a", store.entries["a"])
    assert store.find("cid", 1, 2, "other first line") is None  # inode reused by a new file
    assert store.find("cid", 1, 3, "fp") is None
    assert store.find("cid", 7, 2, "fp") is None
    assert store.find("other container", 1, 2, "fp") is None


def test_find_prefers_the_latest_truncation_generation() -> None:
    store = CheckpointStore(Path("/nonexistent"))
    store.put("g0", entry(offset=500))
    store.put("g1", entry(offset=20, generation=1))
    assert store.find("cid", 1, 2, "fp")[0] == "g1"  # type: ignore[index]


def test_offsets_mark_the_store_dirty_only_when_they_change() -> None:
    store = CheckpointStore(Path("/nonexistent"))
    store.put("a", entry())
    store.snapshot()
    store.set_offset("a", 10)
    assert not store.dirty
    store.set_offset("a", 11)
    store.set_offset("missing", 5)
    assert store.dirty and store.entries["a"].offset == 11


def test_write_then_load_round_trips(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "src")
    store.put("a", entry(offset=123))
    store.write(store.snapshot())
    assert not store.dirty
    assert not (tmp_path / "src" / "positions.json.tmp").exists()
    again = CheckpointStore(tmp_path / "src")
    again.load()
    assert again.entries == {"a": entry(offset=123)}


def test_a_missing_file_is_an_empty_store(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    store.load()
    assert store.entries == {}


@pytest.mark.parametrize("content", [b"{not json", b'{"version": 99, "files": {}}',
                                     b'{"version": 1, "files": {"a": {"path": 1}}}', b"[]"])
def test_a_corrupt_file_is_moved_aside_and_the_store_starts_empty(
        tmp_path: Path, content: bytes) -> None:
    (tmp_path / "positions.json").write_bytes(content)
    store = CheckpointStore(tmp_path)
    store.load()
    assert store.entries == {}
    assert not (tmp_path / "positions.json").exists()
    (aside,) = tmp_path.glob("positions.json.corrupt-*")
    assert aside.read_bytes() == content


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_an_unwritable_directory_raises_storage_error(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        store = CheckpointStore(tmp_path)
        with pytest.raises(StorageError):
            store.write(store.snapshot())
    finally:
        tmp_path.chmod(0o700)


def test_lineages_and_sizes_survive_a_write_and_load(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    store.put("a", entry())
    store.set_size("a", 999)
    store.mark_handled("/real", "fp1", "/p")
    store.mark_handled("/real", "fp2", "/p")
    store.write(store.snapshot())
    again = CheckpointStore(tmp_path)
    again.load()
    assert again.entries["a"].size == 999
    assert again.handled("/real") == {"fp1", "fp2"}
    assert again.lineage_paths == {"/real": "/p"}
    assert again.handled("/other") is None
    assert again.find("cid", 1, 2, "fp") == ("a", again.entries["a"])


def test_sizes_never_make_the_store_dirty_but_lineage_changes_do() -> None:
    store = CheckpointStore(Path("/nonexistent"))
    store.put("a", entry())
    store.snapshot()
    store.set_size("a", 5)
    assert not store.dirty
    store.set_handled("/real", {"x"}, "/p")
    assert store.dirty
    store.snapshot()
    store.set_handled("/real", {"x"}, "/p")
    assert not store.dirty
    store.drop_lineage("/real")
    assert store.dirty and store.handled("/real") is None


def test_a_file_written_before_sizes_and_lineages_existed_still_loads(tmp_path: Path) -> None:
    (tmp_path / "positions.json").write_text(
        '{"version": 1, "files": {"a": {"path": "/p", "real_path": "/real", "key": "k", '
        '"dev": 1, "ino": 2, "fingerprint": "fp", "generation": 0, "offset": 7}}}')
    store = CheckpointStore(tmp_path)
    store.load()
    assert store.entries["a"].offset == 7 and store.entries["a"].size == 0
    assert store.lineages == {}


def test_removing_an_entry_removes_it_from_the_index() -> None:
    store = CheckpointStore(Path("/nonexistent"))
    store.put("a", entry())
    store.remove("a")
    assert store.find("cid", 1, 2, "fp") is None


def test_the_carried_time_moves_with_the_offset_and_survives_a_restart(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    store.put("a", entry(offset=0))
    store.set_offset("a", 50, 1_700_000_000_000_000_000)
    store.write(store.snapshot())
    again = CheckpointStore(tmp_path)
    again.load()
    assert (again.entries["a"].offset, again.entries["a"].time_ns) == (
        50, 1_700_000_000_000_000_000)


def test_fresh_entries_are_unsaved_until_the_owner_says_a_write_took_them() -> None:
    store = CheckpointStore(Path("/nonexistent"))
    store.put("a", entry())
    assert store.unsaved == {"a"}
    store.unsaved.clear()  # what TailSource does once a write including it succeeded
    store.set_time("a", 5)  # an entry of an older version gets its first time
    assert store.unsaved == {"a"} and store.entries["a"].time_ns == 5 and store.dirty
    store.remove("a")
    assert not store.unsaved


def test_an_entry_without_a_carried_time_loads_as_unknown(tmp_path: Path) -> None:
    (tmp_path / "positions.json").write_text(
        '{"version": 1, "files": {"a": {"path": "/p", "real_path": "/r", "key": "k", '
        '"dev": 1, "ino": 2, "fingerprint": "f", "generation": 0, "offset": 7}}}')
    store = CheckpointStore(tmp_path)
    store.load()
    assert store.entries["a"].time_ns == 0 and not store.unsaved


def test_the_sent_offset_round_trips_outside_the_entries(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "src")
    store.put("a", entry(offset=10))
    store.put("b", entry(offset=20, ino=3))
    store.entries["a"].sent = 90
    store.write(store.snapshot())
    doc = orjson.loads((tmp_path / "src" / "positions.json").read_bytes())
    assert doc["sent"] == {"a": 90}
    assert all("sent" not in fields for fields in doc["files"].values())  # older versions
    again = CheckpointStore(tmp_path / "src")
    again.load()
    assert (again.entries["a"].sent, again.entries["b"].sent) == (90, 0)
