"""A message split by a rotation, with an agent restart between its pieces.

The old file is renamed away (kubelet's rotation) holding the first piece of a message, the
agent stops (a SIGKILL: no final checkpoint save; or a clean stop), and the new file, with
the rest of the message, is created only after the agent started again. The restarted agent
adopts the rotated generation from its checkpoint and must hand its open piece to the new
file exactly as a running agent does: one record, under the id of its first piece.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import orjson
import pytest

from tests.integration.sources.tail.conftest import (
    Collector,
    Tail,
    append,
    cri,
    positions,
    wait_until,
)

# Long enough that neither runs out while the test waits between its steps.
SLOW = {"rotate_wait_secs": 1.5, "partial_flush_secs": 1.5}
STAMP = "20261207-100000"


def docker_piece(i: int, text: str, final: bool) -> str:
    """One docker json-file line; without a final LF in ``log`` it is a partial piece."""
    body = {"log": text + ("\n" if final else ""), "stream": "stdout",
            "time": f"2024-01-01T12:00:00.{i:09d}Z"}
    return orjson.dumps(body).decode() + "\n"


def pieces(fmt: str) -> tuple[str, str]:
    """(old file: a plain line, a first piece; new file: a middle piece, the last, a line)."""
    if fmt == "cri":
        return (cri(1, text="plain") + cri(2, tag="P", text="first-half " + "a" * 40),
                cri(3, tag="P", text=" middle " + "b" * 40) + cri(4, text=" second-half")
                + cri(5, text="after"))
    return (docker_piece(1, "plain", True) + docker_piece(2, "first-half " + "a" * 40, False),
            docker_piece(3, " middle " + "b" * 40, False)
            + docker_piece(4, " second-half", True) + docker_piece(5, "after", True))


JOINED = "first-half " + "a" * 40 + " middle " + "b" * 40 + " second-half"


def rotated_entry(tail: Tail, rotated: Path) -> dict[str, object]:
    st = rotated.stat()
    (entry,) = [e for e in positions(tail.state).values()
                if (e["dev"], e["ino"]) == (st.st_dev, st.st_ino)]
    return entry


SLOW_VARIANT = pytest.mark.slow  # about 3 s each: one variant stays in the default run


@pytest.mark.parametrize(("fmt", "kill"), [
    pytest.param("cri", True, id="cri-sigkill"),
    pytest.param("cri", False, id="cri-clean-stop", marks=SLOW_VARIANT),
    pytest.param("docker", True, id="docker-sigkill", marks=SLOW_VARIANT),
    pytest.param("docker", False, id="docker-clean-stop", marks=SLOW_VARIANT),
])
async def test_a_message_split_by_a_rotation_and_a_restart_is_one_record(
        tail: Tail, fmt: str, kill: bool) -> None:
    real, _ = tail.pod_file()
    old_text, new_text = pieces(fmt)
    positions_file = tail.state / "tail" / "positions.json"
    first = Collector()
    async with tail.running(first, **SLOW):
        append(real, old_text)
        await wait_until(lambda: len(first.records) == 1, what="the plain line")
        plain_end = len(old_text.split("\n")[0]) + 1
        await wait_until(lambda: [e["offset"] for e in positions(tail.state).values()]
                         == [plain_end], what="the plain line's checkpoint on disk")
        rotated = real.with_name(f"{real.name}.{STAMP}")
        os.rename(real, rotated)  # the runtime creates the new file only later
        saved = positions_file.read_bytes()
    if kill:
        positions_file.write_bytes(saved)  # what a SIGKILL right after the rename leaves
    assert first.logs() == ["plain"]

    second = Collector(auto_ack=False)
    async with tail.running(second, **SLOW):
        await asyncio.sleep(0.3)  # the restarted agent has adopted the rotated generation
        append(real, new_text)
        await wait_until(lambda: len(second.records) == 2, what="the joined record")
        await asyncio.sleep(0.3)
        # Nothing acknowledged yet: the rotated file's checkpoint stays at the first piece.
        assert rotated_entry(tail, rotated)["offset"] == plain_end
        crash = positions_file.read_bytes()
    positions_file.write_bytes(crash)  # a second SIGKILL before the joined record is safe
    assert second.logs() == [JOINED, "after"]
    joined = second.records[0]
    assert joined.doc_id.split("-")[0] == first.records[0].doc_id.split("-")[0]

    third = Collector()
    async with tail.running(third, **SLOW):
        await wait_until(lambda: len(third.records) == 2, what="the replay")
        await wait_until(lambda: len(positions(tail.state)) == 1, timeout=10,
                         what="the rotated generation retired once its record was safe")
    assert [(r.doc_id, r.body["log"]) for r in third.records] == [
        (r.doc_id, r.body["log"]) for r in second.records]  # same ids: no duplicate
    (entry,) = positions(tail.state).values()
    assert entry["offset"] == real.stat().st_size


@pytest.mark.parametrize("fmt", [
    pytest.param("cri", id="cri"),
    pytest.param("docker", id="docker", marks=SLOW_VARIANT),
])
async def test_a_split_message_of_a_file_seen_only_empty_is_one_record_after_a_restart(
        tail: Tail, fmt: str) -> None:
    """The agent saw the file only while it was empty: no position was saved for it, only
    its lineage. While the agent is down the file gets a line and the first piece of a
    message, is rotated, and the new file starts with the rest. The restarted agent adopts
    the rotated generation from its start and must still hand the piece over: one record."""
    real, _ = tail.pod_file()
    old_text, new_text = pieces(fmt)
    first = Collector()
    async with tail.running(first, **SLOW):
        await wait_until(lambda: real.resolve().as_posix() in _lineages(tail),
                         what="the empty file's lineage on disk")
    assert positions(tail.state) == {}  # nothing read: no position, only the lineage
    assert first.logs() == []

    append(real, old_text)  # while the agent is down
    rotated = real.with_name(f"{real.name}.{STAMP}")
    os.rename(real, rotated)
    append(real, new_text)

    second = Collector()
    async with tail.running(second, **SLOW):
        await wait_until(lambda: len(second.records) == 3, what="every record")
        await asyncio.sleep(0.3)  # an orphaned last piece would show up as a fourth record
    assert second.logs() == ["plain", JOINED, "after"]
    plain, joined, _ = second.records
    # The joined record is named after its first piece, in the rotated generation.
    assert joined.doc_id.split("-")[0] == plain.doc_id.split("-")[0]


def _lineages(tail: Tail) -> dict[str, object]:
    path = tail.state / "tail" / "positions.json"
    if not path.exists():
        return {}
    lineages: dict[str, object] = orjson.loads(path.read_bytes()).get("lineages", {})
    return lineages
