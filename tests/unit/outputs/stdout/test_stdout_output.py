"""The stdout output prints one JSON line per record and always delivers."""

from __future__ import annotations

import io
from typing import Any

import orjson

from outputs.stdout import StdoutConfig, StdoutOutput
from shipper.protocols import Status
from shipper.record import Record


class ClosedStream(io.BytesIO):
    def write(self, data: bytes) -> int:  # type: ignore[override]
        raise BrokenPipeError("stdout closed")


async def test_records_are_written_as_json_lines_and_delivered() -> None:
    stream = io.BytesIO()
    output = StdoutOutput("debug", StdoutConfig(), stream=stream)
    payloads = output.encode([Record({"log": "a"}, 1, "t"), Record({"log": "b\nc"}, 2, "t")])
    outcome = await output.send(payloads)
    assert outcome.statuses == [Status.DELIVERED, Status.DELIVERED]
    assert [orjson.loads(line) for line in stream.getvalue().splitlines()] == [
        {"log": "a"}, {"log": "b\nc"}]


async def test_a_closed_stdout_is_retried_not_raised() -> None:
    output = StdoutOutput("debug", StdoutConfig(), stream=ClosedStream())
    outcome = await output.send(output.encode([Record({"log": "a"}, 1, "t")]))
    assert outcome.statuses == [Status.RETRY]
    assert outcome.errors[0].type == "write_error"


def test_odd_values_are_still_printed() -> None:
    output = StdoutOutput("debug", StdoutConfig())
    body: dict[Any, Any] = {1: "non-str key"}
    (payload,) = output.encode([Record(body, 1, "t")])
    assert orjson.loads(payload) == {"1": "non-str key"}
    assert output.describe(payload) == {"record": {"1": "non-str key"}}


def test_defaults() -> None:
    config = StdoutConfig()
    assert (config.type, config.match) == ("stdout", "**")
    assert config.validate() == []
