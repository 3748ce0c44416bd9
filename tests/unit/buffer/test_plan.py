"""How a put is cut into runs: chunk limits, the total limit and segment headers."""

from shipper.buffer.disk.format import HEADER_SIZE, RECORD_OVERHEAD
from shipper.buffer.disk.plan import plan_run

P = [b"x" * 12] * 10  # 20 bytes each once framed
F = RECORD_OVERHEAD + 12


def plan(start=0, open_size=None, open_count=0, free=10_000, chunk=10_000, records=1000):
    return plan_run(P, start, open_size=open_size, open_count=open_count, free=free,
                    chunk_limit_bytes=chunk, chunk_limit_records=records)


def test_without_an_open_segment_a_new_one_is_needed():
    assert plan() == (True, 10)


def test_an_open_segment_with_room_is_appended_to():
    assert plan(open_size=HEADER_SIZE + F, open_count=1) == (False, 10)


def test_the_run_stops_at_the_chunk_byte_limit():
    assert plan(chunk=HEADER_SIZE + 3 * F) == (True, 3)
    assert plan(open_size=HEADER_SIZE + 2 * F, open_count=2, chunk=HEADER_SIZE + 3 * F) == (
        False, 1)


def test_a_full_open_segment_means_a_new_one():
    assert plan(open_size=HEADER_SIZE + 3 * F, open_count=3, chunk=HEADER_SIZE + 3 * F) == (
        True, 3)
    assert plan(open_size=HEADER_SIZE + F, open_count=4, records=4) == (True, 4)


def test_the_run_stops_at_the_record_limit():
    assert plan(records=4) == (True, 4)


def test_the_new_segment_header_counts_against_the_total_limit():
    assert plan(free=HEADER_SIZE + 2 * F) == (True, 2)
    assert plan(free=HEADER_SIZE + 2 * F - 1) == (True, 1)
    assert plan(free=HEADER_SIZE + F - 1) == (True, 0)


def test_appending_needs_no_header_room():
    assert plan(open_size=100, open_count=1, free=2 * F) == (False, 2)


def test_a_record_larger_than_the_chunk_limit_gets_a_segment_of_its_own():
    assert plan(chunk=5) == (True, 1)
    assert plan(start=9, open_size=HEADER_SIZE + F, open_count=1, chunk=5) == (True, 10)
