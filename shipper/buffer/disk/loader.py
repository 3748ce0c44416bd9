"""Reading a chunk back from its segment file when delivery takes it (blocking).

The file is verified again, record by record: bytes can rot, or be damaged by another
process, after recovery looked at them. Good records are delivered; if anything is damaged
the original file is first copied to ``quarantine/`` so an operator keeps the evidence.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from shipper.buffer.disk.format import (
    HEADER_SIZE,
    HeaderError,
    read_header,
    scan,
    verified_payloads,
)
from shipper.buffer.disk.recovery import QUARANTINE, describe_loss, shown_ranges
from shipper.buffer.disk.storage import Storage

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Loaded:
    payloads: list[bytes]
    corrupt: int


def load_chunk(path: Path, storage: Storage, expected: int | None = None) -> Loaded:
    """Good payloads of the segment at ``path`` and how many records were lost.

    ``expected``: the records the buffer knows the segment held (written, or found at
    start); then the loss is exact even when the file was cut short, which the damaged
    bytes alone cannot tell. Raises OSError when the file cannot be read at all.
    """
    data = storage.read(path)
    problem = ""
    try:
        read_header(data)
    except HeaderError as exc:  # includes NewerFormatError: not ours to deliver as it is
        problem = str(exc)
    if not problem:
        payloads = verified_payloads(data, HEADER_SIZE)
        if payloads is not None:
            return Loaded(payloads, 0)
    # A damaged header or record: salvage what verifies, and keep a copy of the original.
    found = scan(data, HEADER_SIZE)
    target = path.parent / QUARANTINE / f"{path.name}.{time.time_ns()}"
    try:
        storage.write_file(target, data)
    except OSError as exc:
        log.error("cannot copy damaged segment %s to quarantine: %s", path, exc,
                  extra={"event": "buffer_quarantine_failed", "segment": str(path)})
    lost, exact = found.lost(data)
    if expected is not None and expected - len(found.spans) >= lost:
        lost, exact = expected - len(found.spans), True
    log.warning("disk buffer segment %s was damaged after start (%s); %d good record(s) "
                "delivered, %s, original copied to %s", path, problem or "bad records",
                len(found.spans), describe_loss(lost, exact, found.bad), target,
                extra={"event": "buffer_segment_quarantined", "segment": str(path),
                       "quarantined_to": str(target), "corrupt_records": lost,
                       "corrupt_records_exact": exact,
                       "damaged_ranges": shown_ranges(found.bad),
                       "salvaged_records": len(found.spans)})
    return Loaded(found.payloads(data), lost)
