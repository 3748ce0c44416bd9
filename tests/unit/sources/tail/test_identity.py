"""File identity and doc ids: stable for the same file, different for anything else."""

from shipper.sources.tail.identity import (
    FINGERPRINT_BYTES,
    doc_id,
    file_identity,
    fingerprint,
    fingerprint_source,
)


def test_fingerprint_waits_for_a_complete_first_line() -> None:
    assert fingerprint_source(b"") is None
    assert fingerprint_source(b"half a line") is None
    assert fingerprint_source(b"first\nsecond\n") == b"first\n"


def test_fingerprint_of_a_long_first_line_is_its_first_kib() -> None:
    head = b"x" * FINGERPRINT_BYTES
    assert fingerprint_source(head) == head
    assert fingerprint_source(head + b"\n") == head


def test_identity_is_deterministic_and_16_hex() -> None:
    one = file_identity("cid", 1, 2, fingerprint(b"line\n"))
    assert one == file_identity("cid", 1, 2, fingerprint(b"line\n"))
    assert len(one) == 16 and int(one, 16) >= 0


def test_identity_changes_with_every_component() -> None:
    fp = fingerprint(b"line\n")
    base = file_identity("cid", 1, 2, fp)
    others = {file_identity("other", 1, 2, fp), file_identity("cid", 9, 2, fp),
              file_identity("cid", 1, 9, fp), file_identity("cid", 1, 2, fingerprint(b"x\n")),
              file_identity("cid", 1, 2, fp, generation=1)}
    assert base not in others and len(others) == 5


def test_doc_id_concatenates_identity_and_hex_offset() -> None:
    assert doc_id("00ff00ff00ff00ff", 0) == "00ff00ff00ff00ff-0"
    assert doc_id("00ff00ff00ff00ff", 4096) == "00ff00ff00ff00ff-1000"
