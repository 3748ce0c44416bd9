"""Generations of a file: what is read, skipped or counted lost, exactly once (pure)."""

import gzip
from pathlib import Path

from shipper.sources.tail.checkpoints import Entry
from shipper.sources.tail.identity import fingerprint
from shipper.sources.tail.lineage import (
    COMPRESSED,
    DELETED,
    TRUNCATED,
    Claim,
    Generation,
    Generations,
    classify,
    gzip_head,
)

FP = {name: fingerprint(f"{name}\n".encode()) for name in "ABCDEZ"}


def plain(name: str, ino: int, size: int = 100, mtime: float = 0.0) -> Generation:
    return Generation(f"/p/0.log.{name}", 1, ino, size, mtime, False, FP[name])


def gz(name: str, ino: int, size: int = 100, mtime: float = 0.0) -> Generation:
    return Generation(f"/p/0.log.{name}.gz", 1, ino, size, mtime, True, FP[name])


def entry(name: str, ino: int, offset: int, size: int = 0) -> tuple[str, Entry]:
    return (f"id-{name}", Entry("/c/x.log", "/p/0.log", "cid", 1, ino, FP[name], 0, offset,
                                size))


def test_first_sight_records_existing_generations_without_reading_them() -> None:
    plan = classify([plain("A", 10), gz("Z", 11)], None, [], [])
    assert plan.adopt == [] and plan.lost == []
    assert plan.handled == {FP["A"], FP["Z"]}


def test_a_generation_never_seen_is_read_from_its_start() -> None:
    gen = plain("B", 20)
    plan = classify([gen], set(), [], [])
    assert plan.adopt == [(gen, None)]
    assert plan.handled == {FP["B"]}


def test_generations_being_read_or_already_handled_are_left_alone() -> None:
    reading = Claim(1, 10, FP["A"], 50, attached=True)
    plan = classify([plain("A", 10), plain("B", 20)], {FP["B"]}, [reading], [])
    assert plan.adopt == [] and plan.lost == []
    assert plan.handled == {FP["A"], FP["B"]}


def test_a_checkpointed_generation_is_resumed_from_its_offset() -> None:
    gen = plain("A", 10)
    saved = entry("A", 10, offset=40)
    plan = classify([gen, plain("B", 20)], {FP["A"]}, [], [saved])
    assert plan.adopt == [(gen, saved), (plain("B", 20), None)]


def test_a_copy_of_a_truncated_file_is_resumed_with_the_original_checkpoint() -> None:
    copy = plain("A", 30, size=500)
    saved = entry("A", 10, offset=400)  # the original inode 10 now holds other content
    plan = classify([copy], {FP["A"]}, [Claim(1, 10, FP["C"], 0, True)], [saved])
    assert plan.adopt == [(copy, saved)] and plan.lost == []


def test_compressed_data_we_still_hold_open_is_not_lost() -> None:
    plan = classify([gz("A", 99)], {FP["A"]}, [Claim(1, 10, FP["A"], 10, attached=True)], [])
    assert plan.lost == [] and plan.orphaned == []


def test_compressed_rest_of_a_checkpointed_file_is_counted_exactly() -> None:
    saved = entry("A", 10, offset=30)
    plan = classify([gz("A", 99, size=100)], {FP["A"]}, [], [saved])
    assert plan.lost == [(COMPRESSED, 70, "/p/0.log.A.gz")]
    assert plan.remove == ["id-A"]


def test_a_generation_compressed_before_it_was_seen_counts_whole() -> None:
    plan = classify([gz("B", 98, size=123)], {FP["A"]}, [], [])
    assert plan.lost == [(COMPRESSED, 123, "/p/0.log.B.gz")]
    assert FP["B"] in plan.handled
    again = classify([gz("B", 98, size=123)], plan.handled, [], [])
    assert again.lost == []  # counted once


def test_a_reader_without_descriptor_whose_file_was_compressed_is_orphaned() -> None:
    token = object()
    parked = Claim(1, 10, FP["A"], 60, attached=False, token=token)
    plan = classify([gz("A", 99, size=100)], {FP["A"]}, [parked], [])
    assert plan.orphaned == [(token, 100, "/p/0.log.A.gz")]
    assert plan.lost == []  # the caller counts it, knowing the reader's incomplete line


def test_a_vanished_checkpointed_file_counts_the_size_last_seen() -> None:
    plan = classify([], {FP["A"]}, [], [entry("A", 10, offset=30, size=90)])
    assert plan.lost == [(DELETED, 60, "/c/x.log")]
    assert plan.remove == ["id-A"]


def test_same_inode_with_other_content_is_a_truncation() -> None:
    plan = classify([], {FP["A"]}, [Claim(1, 10, FP["C"], 0, True)],
                    [entry("A", 10, offset=30, size=90)])
    assert plan.lost == [(TRUNCATED, 60, "/c/x.log")]


def test_an_entry_of_a_reader_that_has_not_looked_yet_is_kept() -> None:
    plan = classify([], {FP["A"]}, [Claim(1, 10, None, 0, attached=False)],
                    [entry("A", 10, offset=30, size=90)])
    assert plan.remove == [] and plan.lost == []


def test_an_incomplete_first_line_where_a_complete_one_was_is_a_truncation() -> None:
    plan = classify([], {FP["A"]}, [Claim(1, 10, None, 0, attached=True)],
                    [entry("A", 10, offset=30, size=90)])
    assert plan.lost == [(TRUNCATED, 60, "/c/x.log")] and plan.remove == ["id-A"]


def test_handled_fingerprints_of_generations_gone_from_disk_are_forgotten() -> None:
    plan = classify([plain("B", 20)], {FP["A"], FP["B"], FP["Z"]},
                    [Claim(1, 5, FP["C"], 0, True)], [])
    assert plan.handled == {FP["B"], FP["C"]}


def test_generations_are_listed_oldest_first_with_compressed_heads(tmp_path: Path) -> None:
    base = tmp_path / "0.log"
    base.write_bytes(b"current\n")
    old = tmp_path / "0.log.20240101-000000.gz"
    content = b"first line\n" + b"x" * 5000 + b"\n"
    old.write_bytes(gzip.compress(content))
    newer = tmp_path / "0.log.20240101-010000"
    newer.write_bytes(b"second gen\n")
    (tmp_path / "0.log.20240101-020000.tmp").write_bytes(b"in progress")
    import os
    os.utime(old, (1, 1))
    os.utime(newer, (2, 2))
    gens = Generations().list(str(base))
    assert [Path(g.path).name for g in gens] == [old.name, newer.name, "0.log"]
    assert [Path(g.path).name for g in Generations().list(str(base), base=False)] == [
        old.name, newer.name]
    assert gens[0].compressed and gens[0].size == len(content)
    assert gens[0].fingerprint == fingerprint(b"first line\n")
    assert not gens[1].compressed and gens[1].fingerprint == fingerprint(b"second gen\n")


def test_gzip_head_rejects_a_file_that_is_not_gzip(tmp_path: Path) -> None:
    bad = tmp_path / "x.gz"
    bad.write_bytes(b"plain text\n")
    import pytest
    with pytest.raises(ValueError):
        gzip_head(str(bad), bad.stat().st_size)


def test_on_first_sight_generations_newer_than_the_last_save_are_new() -> None:
    old = plain("A", 10, mtime=50.0)
    fresh = plain("B", 20, mtime=150.0)
    packed = gz("C", 30, size=77, mtime=160.0)
    plan = classify([old, fresh, packed], None, [], [], since=100.0)
    assert plan.adopt == [(fresh, None)]
    assert plan.lost == [(COMPRESSED, 77, "/p/0.log.C.gz")]
    assert plan.handled == {FP["A"], FP["B"], FP["C"]}


def test_a_given_up_entry_only_counts_what_it_held_in_memory() -> None:
    ident, gone = entry("A", 10, offset=30, size=40)
    gone.gone = True  # everything after byte 40 was counted when its reader was given up
    plan = classify([gz("A", 99, size=100)], {FP["A"]}, [], [(ident, gone)])
    assert plan.lost == [(COMPRESSED, 10, "/p/0.log.A.gz")]
    ident, gone = entry("A", 10, offset=30, size=40)
    gone.gone = True
    plan = classify([plain("A", 10, size=100)], {FP["A"]}, [], [(ident, gone)])
    assert plan.adopt == [] and plan.lost == [(DELETED, 10, "/c/x.log")]


def test_bytes_sent_but_unacknowledged_before_a_restart_are_unconfirmed_not_lost() -> None:
    # The previous run read and sent the whole file; its acknowledgements (or their save)
    # were lost with a SIGKILL. Compressed while down: nothing is known lost.
    ident, saved = entry("A", 10, offset=0)
    saved.sent = 100
    plan = classify([gz("A", 99, size=100)], {FP["A"]}, [], [(ident, saved)])
    assert plan.lost == []
    assert plan.unconfirmed == [(COMPRESSED, 100, "/p/0.log.A.gz")]
    assert plan.remove == ["id-A"]


def test_only_what_was_never_sent_is_lost() -> None:
    ident, saved = entry("A", 10, offset=30)
    saved.sent = 80
    plan = classify([gz("A", 99, size=100)], {FP["A"]}, [], [(ident, saved)])
    assert plan.lost == [(COMPRESSED, 20, "/p/0.log.A.gz")]
    assert plan.unconfirmed == [(COMPRESSED, 50, "/p/0.log.A.gz")]
    ident, saved = entry("A", 10, offset=30, size=90)  # vanished while down
    saved.sent = 50
    plan = classify([], {FP["A"]}, [], [(ident, saved)])
    assert plan.lost == [(DELETED, 40, "/c/x.log")]
    assert plan.unconfirmed == [(DELETED, 20, "/c/x.log")]


def test_a_sent_offset_behind_the_checkpoint_changes_nothing() -> None:
    # Written by an older version (no ``sent``), or acknowledged past it: all exact.
    plan = classify([gz("A", 99, size=100)], {FP["A"]}, [], [entry("A", 10, offset=30)])
    assert plan.lost == [(COMPRESSED, 70, "/p/0.log.A.gz")] and plan.unconfirmed == []
