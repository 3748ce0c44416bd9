"""Split messages: joined per stream, bounded in memory, cut at a UTF-8 boundary."""

from shipper.sources.tail.partials import Group, Partials, truncate_utf8


def test_truncate_utf8_never_splits_a_character() -> None:
    text = "aé€😀".encode()  # 1 + 2 + 3 + 4 bytes
    assert truncate_utf8(text, 100) == text
    assert truncate_utf8(text, 1) == b"a"
    assert truncate_utf8(text, 2) == b"a"
    assert truncate_utf8(text, 3) == "aé".encode()
    assert truncate_utf8(text, 5) == "aé".encode()
    assert truncate_utf8(text, 9) == "aé€".encode()
    assert truncate_utf8(text, 10) == text


def test_truncate_utf8_checks_the_tail_of_data_already_at_the_limit() -> None:
    assert truncate_utf8("a€".encode()[:3], 3) == b"a"


def test_a_group_keeps_at_most_max_bytes_but_counts_everything() -> None:
    group = Group(offset=7, time_ns=1, time_str="t")
    for _ in range(10):
        group.add(b"0123456789", 10, max_bytes=25)
    assert group.stored == 25 and group.total == 100
    content, truncated = group.content(25)
    assert content == b"0123456789012345678901234" and truncated


def test_groups_are_per_stream_and_keep_their_first_offset() -> None:
    partials = Partials(100)
    partials.add("stdout", 0, 1, "t1", b"out-a ")
    partials.add("stderr", 50, 2, "t2", b"err-a ")
    partials.add("stdout", 90, 3, "t3", b"out-b ")
    assert partials.safe_offset(200) == 0
    out = partials.finish("stdout", b"out-c")
    assert (out.offset, out.time_ns, out.content(100)) == (0, 1, (b"out-a out-b out-c", False))
    assert partials.safe_offset(200) == 50
    assert [stream for stream, _ in partials.drain()] == ["stderr"]
    assert not partials and partials.safe_offset(200) == 200
