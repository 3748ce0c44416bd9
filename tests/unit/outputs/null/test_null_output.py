"""The null output encodes like a real destination, then discards and reports delivered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from outputs.null import NullConfig, NullOutput
from shipper.app import Agent, parse_agent_config
from shipper.errors import ConfigError
from shipper.protocols import Status
from shipper.record import Record

CONFIG = """\
state_dir: {state}
sources:
  logs: {{type: tail, include: ["{state}/*.log"]}}
outputs:
  drop:
    type: {type}
    match: "debug.**"
"""


async def test_every_payload_is_reported_delivered_and_counted() -> None:
    output = NullOutput("drop", NullConfig())
    await output.start()
    payloads = output.encode([Record({"log": "a"}, 1, "t"), Record({"log": "b"}, 2, "t")])
    outcome = await output.send(payloads)
    assert outcome.statuses == [Status.DELIVERED, Status.DELIVERED]
    assert outcome.errors == {}
    assert output.discarded == 2
    assert (await output.send([])).statuses == []
    await output.close()


def test_encode_serialises_each_body_to_json() -> None:
    """The discard benchmark relies on this: encoding must cost what a real output's does."""
    output = NullOutput("drop", NullConfig())
    bodies: list[dict[str, Any]] = [
        {"log": "GET /x 200", "kubernetes": {"pod_name": "p", "labels": {"app": "a"}}},
        {"log": "ü\n", "stream": "stderr"}]
    payloads = output.encode([Record(b, i, "t") for i, b in enumerate(bodies)])
    assert [orjson.loads(p) for p in payloads] == bodies
    assert output.describe(payloads[0]) == {"record": bodies[0]}


def test_odd_values_fall_back_to_strings() -> None:
    output = NullOutput("drop", NullConfig())
    body: dict[Any, Any] = {1: "non-str key", "tags": {"x"}}
    (payload,) = output.encode([Record(body, 1, "t")])
    assert orjson.loads(payload) == {"1": "non-str key", "tags": "{'x'}"}


def test_describe_keeps_a_payload_that_is_not_json() -> None:
    assert NullOutput("drop", NullConfig()).describe(b"\xffnot json") == {
        "raw": "\ufffdnot json"}


def test_quoted_null_type_builds_a_null_output(tmp_path: Path) -> None:
    config = parse_agent_config(CONFIG.format(state=tmp_path, type='"null"'))
    out_cfg = config.outputs["drop"]
    assert out_cfg == NullConfig(match="debug.**")
    agent = Agent(config)
    assert isinstance(agent.units["drop"].output, NullOutput)


def test_unquoted_null_type_explains_the_quoting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_agent_config(CONFIG.format(state=tmp_path, type="null"))
    assert 'write it quoted, type: "null"' in str(caught.value)
