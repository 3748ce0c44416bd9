"""The top-level ``workers`` key: an integer from 1 to 64, errors naming file, line, key."""

from __future__ import annotations

import pytest

from shipper.app import parse_agent_config
from shipper.errors import ConfigError

BASE = """\
sources:
  containers: {type: tail}
outputs:
  out: {type: stdout}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_agent_config(text, file="shipper.yaml")
    return [str(p) for p in info.value.problems]


def test_one_worker_by_default():
    assert parse_agent_config(BASE, file="shipper.yaml").workers == 1


@pytest.mark.parametrize("count", [1, 2, 64])
def test_counts_in_range_are_accepted(count):
    assert parse_agent_config(BASE + f"workers: {count}\n", file="shipper.yaml").workers == count


@pytest.mark.parametrize("count", [0, 65, -1])
def test_counts_out_of_range_name_the_key_and_the_file(count):
    assert problems(BASE + f"workers: {count}\n") == [
        f"shipper.yaml:5: workers: must be between 1 and 64, got {count}"]


def test_a_worker_count_must_be_an_integer():
    found = problems(BASE + "workers: two\n")
    assert len(found) == 1 and found[0].startswith("shipper.yaml:5: workers: expected an integer")


def test_the_count_can_come_from_the_environment():
    config = parse_agent_config(BASE + "workers: ${SHIPPER_TEST_WORKERS}\n", file="shipper.yaml",
                                environ={"SHIPPER_TEST_WORKERS": "4"})
    assert config.workers == 4
