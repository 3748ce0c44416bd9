"""CRI (containerd, CRI-O) batch decoding: spec §2.2 lines, flags, partials, offsets."""

from typing import Any

from shipper.sources.tail.formats import CriDecoder, detect_format
from shipper.sources.tail.paths import parse_path
from shipper.sources.tail.timestamps import parse_time

ID = "0123456789abcdef" * 4
PATH = f"/var/log/containers/web_default_nginx-{ID}.log"
IDENT = "00112233aabbccdd"
NOW = 1_700_000_000_123_456_789
TS = "2024-01-01T12:00:00.000000001Z"
T0 = parse_time(TS)[0]  # type: ignore[index]


def decoder(max_line_bytes: int = 1024) -> CriDecoder:
    return CriDecoder(IDENT, parse_path(PATH, "kube").static_fields(), max_line_bytes,
                      carry_ns=NOW)


def decode(lines: list[bytes], dec: CriDecoder | None = None, offset: int = 0) -> list[Any]:
    records, end = (dec or decoder()).decode(lines, offset)
    assert end == offset + sum(len(line) + 1 for line in lines)
    return records


def test_a_full_line_becomes_a_fluentd_shaped_record() -> None:
    (record,) = decode([f"{TS} stdout F hello  world ".encode()])
    assert record.body == {
        "log": "hello  world ", "stream": "stdout", "time": TS,
        "tag": f"kube.var.log.containers.web_default_nginx-{ID}.log",
        "kubernetes": {"namespace_name": "default", "pod_name": "web", "container_name": "nginx"},
        "docker": {"container_id": ID}}
    assert record.time_ns == T0
    assert record.tag == record.body["tag"]
    assert record.doc_id == f"{IDENT}-0"


def test_doc_ids_are_the_byte_offsets_of_each_line() -> None:
    lines = [f"{TS} stdout F {'x' * n}".encode() for n in (0, 5, 300)]
    records = decode(lines, offset=0x100)
    starts = [0x100, 0x100 + len(lines[0]) + 1, 0x100 + len(lines[0]) + len(lines[1]) + 2]
    assert [r.doc_id for r in records] == [f"{IDENT}-{s:x}" for s in starts]


def test_the_same_lines_decoded_again_get_the_same_ids() -> None:
    lines = [f"{TS} stderr F line {i}".encode() for i in range(3)]
    assert [r.doc_id for r in decode(lines)] == [r.doc_id for r in decode(lines)]


def test_empty_lines_are_kept() -> None:
    (record,) = decode([b"2024-01-01T12:00:01Z stdout F "])
    assert record.body["log"] == "" and record.body["time"] == "2024-01-01T12:00:01.000000000Z"


def test_times_with_short_fractions_and_offsets_are_normalised_to_utc_nanos() -> None:
    (record,) = decode([b"2024-01-01T21:00:00.5+09:00 stderr F non-UTC runtime"])
    assert record.body["time"] == "2024-01-01T12:00:00.500000000Z"
    assert record.body["stream"] == "stderr"


def test_extra_tags_after_the_first_are_tolerated() -> None:
    records = decode([f"{TS} stdout P:x one ".encode(), f"{TS} stdout F:y two".encode()])
    assert [r.body["log"] for r in records] == ["one two"]


def test_partial_pieces_join_per_stream_with_the_first_piece_time_and_offset() -> None:
    lines = [f"{TS} stdout P out-1 ".encode(),
             b"2024-01-01T12:00:02Z stderr F err",
             b"2024-01-01T12:00:03Z stdout P out-2 ",
             b"2024-01-01T12:00:04Z stdout F out-3"]
    err, out = decode(lines)
    assert (err.body["log"], err.body["stream"]) == ("err", "stderr")
    assert err.doc_id == f"{IDENT}-{len(lines[0]) + 1:x}"
    assert (out.body["log"], out.body["stream"]) == ("out-1 out-2 out-3", "stdout")
    assert out.doc_id == f"{IDENT}-0" and out.time_ns == T0 and out.body["time"] == TS


def test_a_message_split_across_reads_waits_and_holds_the_checkpoint() -> None:
    dec = decoder()
    first = [b"x", f"{TS} stdout P part-a".encode()]  # a malformed line, then an open piece
    records, end = dec.decode(first, 0)
    assert len(records) == 1 and records[0].body["shipper"]["flags"] == ["malformed"]
    assert dec.safe_offset(end) == 2  # the piece's start, not the end of the read
    (record,) = decode([f"{TS} stdout F -b".encode()], dec, offset=end)
    assert record.body["log"] == "part-a-b" and record.doc_id == f"{IDENT}-2"
    assert dec.safe_offset(1000) == 1000


def test_long_messages_are_cut_at_a_utf8_boundary_and_flagged() -> None:
    dec = decoder(max_line_bytes=10)
    (record,) = decode([f"{TS} stdout F abcdefgh€€".encode()], dec)  # 14 bytes of content
    assert record.body["log"] == "abcdefgh"
    assert record.body["shipper"] == {"flags": ["truncated"], "original_bytes": 14}
    assert dec.flags == {"truncated": 1}


def test_joined_partials_are_bounded_too_and_count_every_byte() -> None:
    dec = decoder(max_line_bytes=8)
    lines = [f"{TS} stdout P {'a' * 6}".encode()] * 3 + [f"{TS} stdout F bb".encode()]
    (record,) = decode(lines, dec)
    assert record.body["log"] == "aaaaaaaa"
    assert record.body["shipper"] == {"flags": ["truncated"], "original_bytes": 20}


def test_invalid_utf8_is_replaced_and_flagged() -> None:
    (record,) = decode([f"{TS} stdout F bad ".encode() + b"\xff\xfe!"])
    assert record.body["log"] == "bad \ufffd\ufffd!"
    assert record.body["shipper"] == {"flags": ["invalid_utf8"]}


def test_malformed_lines_ship_raw_without_a_stream_at_the_carried_time() -> None:
    lines = [b"no spaces", b"2024-01-01T12:00:00Z stdout F", b"not-a-time stdout F x",
             f"{TS} stdlog F x".encode()]
    records = decode(lines)
    assert [r.body["log"] for r in records] == [line.decode() for line in lines]
    for record in records:
        assert "stream" not in record.body
        assert record.body["shipper"] == {"flags": ["malformed"]}
        assert record.time_ns == NOW
        assert record.body["time"] == "2023-11-14T22:13:20.123456789Z"


def test_a_carriage_return_before_the_newline_is_stripped() -> None:
    records = decode([f"{TS} stdout F windows\r".encode(), b"raw\r"])
    assert [r.body["log"] for r in records] == ["windows", "raw"]


def test_an_over_long_physical_line_keeps_its_head_and_true_length() -> None:
    dec = decoder(max_line_bytes=5)
    head = f"{TS} stdout F 0123456789".encode()
    (record,) = dec.decode_long(head, len(head) + 1000, 64)
    assert record.body["log"] == "01234" and record.doc_id == f"{IDENT}-40"
    assert record.body["shipper"] == {"flags": ["truncated"], "original_bytes": 1010}


def test_flush_ships_a_dangling_partial_piece() -> None:
    dec = decoder()
    assert decode([f"{TS} stderr P exited mid-line".encode()], dec) == []
    (record,) = dec.flush()
    assert record.body["log"] == "exited mid-line" and record.body["stream"] == "stderr"
    assert dec.flush() == []


def test_format_detection_looks_at_the_first_byte() -> None:
    assert detect_format(b'{"log":"x\\n"}') == "docker"
    assert detect_format(b"  {") == "docker"
    assert detect_format(f"{TS} stdout F {{}}".encode()) == "cri"
    assert detect_format(b"\n") == "cri"


def test_a_leading_run_of_nul_bytes_is_skipped_and_inner_nuls_are_data() -> None:
    lines = [b"\0\0\0" + f"{TS} stdout F after hole".encode(), b"\0\0\0\0",
             f"{TS} stdout F in\0side".encode()]
    records = decode(lines)
    assert [r.body["log"] for r in records] == ["after hole", "in\0side"]
    assert records[0].doc_id == f"{IDENT}-0"


def test_a_crlf_line_loses_its_cr_on_the_slow_path_too() -> None:
    (record,) = decode([b"2024-01-01T12:00:00Z stdout F windows\r"])
    assert record.body["log"] == "windows"


def test_format_detection_ignores_a_byte_order_mark() -> None:
    assert detect_format(b'\xef\xbb\xbf{"log":"x"}\n') == "docker"
    assert detect_format(b"\xef\xbb\xbf2024-01-01T00:00:00Z stdout F x\n") == "cri"
