"""Docker json-file batch decoding: spec §2.3 lines, 16 KiB pieces, flags."""

from typing import Any

import orjson

from shipper.sources.tail.formats import DockerDecoder
from shipper.sources.tail.paths import parse_path

IDENT = "ffeeddccbbaa0011"
NOW = 1_700_000_000_000_000_000


def decoder(max_line_bytes: int = 1024) -> DockerDecoder:
    static = parse_path("/var/lib/docker/containers/abc/abc-json.log", "kube").static_fields()
    return DockerDecoder(IDENT, static, max_line_bytes, carry_ns=NOW)


def line(log: str | None, stream: str = "stdout", time: str = "2024-01-01T12:00:00.5Z",
         **extra: Any) -> bytes:
    obj: dict[str, Any] = {} if log is None else {"log": log}
    return orjson.dumps({**obj, "stream": stream, "time": time, **extra})


def decode(lines: list[bytes], dec: DockerDecoder | None = None) -> list[Any]:
    records, end = (dec or decoder()).decode(lines, 0)
    assert end == sum(len(x) + 1 for x in lines)
    return records


def test_one_trailing_newline_is_stripped_and_time_gets_nine_digits() -> None:
    (record,) = decode([line("hello\n\n")])
    assert record.body == {"log": "hello\n", "stream": "stdout",
                           "time": "2024-01-01T12:00:00.500000000Z",
                           "tag": "kube.var.lib.docker.containers.abc.abc-json.log"}
    assert record.doc_id == f"{IDENT}-0"


def test_full_precision_times_pass_through() -> None:
    (record,) = decode([line("x\n", time="2016-10-20T18:39:20.576064431Z")])
    assert record.body["time"] == "2016-10-20T18:39:20.576064431Z"
    assert record.time_ns % 1_000_000_000 == 576064431


def test_crlf_is_stripped() -> None:
    (record,) = decode([line("dos\r\n")])
    assert record.body["log"] == "dos"


def test_a_json_log_stays_a_string() -> None:
    (record,) = decode([line('{"level":"info"}\n')])
    assert record.body["log"] == '{"level":"info"}'


def test_16k_pieces_join_per_stream_with_the_first_piece_offset() -> None:
    lines = [line("a" * 5, time="2024-01-01T12:00:00.1Z"), line("err\n", stream="stderr"),
             line("b" * 5), line("c\n")]
    err, out = decode(lines)
    assert err.body["log"] == "err" and err.doc_id == f"{IDENT}-{len(lines[0]) + 1:x}"
    assert out.body["log"] == "aaaaabbbbbc" and out.doc_id == f"{IDENT}-0"
    assert out.body["time"] == "2024-01-01T12:00:00.100000000Z"


def test_a_crlf_split_between_pieces_is_still_stripped() -> None:
    (record,) = decode([line("text\r"), line("\n")])
    assert record.body["log"] == "text"


def test_attrs_are_kept() -> None:
    (record,) = decode([line("x\n", attrs={"tag": "web"})])
    assert record.body["attrs"] == {"tag": "web"}


def test_missing_log_is_an_empty_message() -> None:
    (record,) = decode([line(None)])
    assert record.body["log"] == "" and "shipper" not in record.body


def test_bad_json_and_bad_fields_ship_raw_flagged_malformed() -> None:
    lines = [b'{"log":"cut', b"[1,2]", line("x\n", stream="stdlog"), line("x\n", time="soon"),
             orjson.dumps({"log": 5, "stream": "stdout", "time": "2024-01-01T12:00:00Z"}),
             orjson.dumps({"log": "x\n", "stream": ["stdout"], "time": "2024-01-01T12:00:00Z"})]
    dec = decoder()
    records = decode(lines, dec)
    assert [r.body["log"] for r in records] == [x.decode() for x in lines]
    assert all(r.body["shipper"] == {"flags": ["malformed"]} and r.time_ns == NOW
               for r in records)
    assert dec.flags == {"malformed": len(lines)}


def test_invalid_utf8_inside_the_json_is_replaced_and_flagged() -> None:
    raw = b'{"log":"caf\xe9\\n","stream":"stdout","time":"2024-01-01T12:00:00Z"}'
    (record,) = decode([raw])
    assert record.body["log"] == "caf\ufffd"
    assert record.body["shipper"] == {"flags": ["invalid_utf8"]}


def test_long_messages_are_truncated_and_flagged() -> None:
    dec = decoder(max_line_bytes=4)
    (record,) = decode([line("ééé\n")], dec)
    assert record.body["log"] == "éé"
    assert record.body["shipper"] == {"flags": ["truncated"], "original_bytes": 6}


def test_a_cut_json_line_ships_raw_truncated_and_malformed() -> None:
    dec = decoder(max_line_bytes=4)
    (record,) = dec.decode_long(b'{"log":"xxxx', 5000, 0)
    assert record.body["log"] == '{"lo'
    assert record.body["shipper"] == {"flags": ["malformed", "truncated"],
                                      "original_bytes": 5000}


def test_flush_ships_the_last_piece_of_a_container_that_exited_mid_line() -> None:
    dec = decoder()
    assert decode([line("no newline")], dec) == []
    assert dec.safe_offset(999) == 0
    (record,) = dec.flush()
    assert record.body["log"] == "no newline"
