"""The stop/fault matrix: a representative diagonal by default, every cell with ``-m slow``."""

from __future__ import annotations

import random
import time
from urllib.parse import urlsplit

import pytest

from tests.integration.matrix.bulkproxy import BulkFaultProxy
from tests.integration.matrix.cell import (
    BUFFERS,
    OUTPUTS,
    SOURCES,
    STOPS,
    Cell,
    CellRun,
    all_cells,
)

#: Each stop kind, buffer, output behaviour and source at least once, in seven cells.
DIAGONAL = [
    Cell("sigterm", "disk", "down", "tail"),
    Cell("sigterm", "memory", "up", "forward"),
    Cell("sigkill", "memory", "flap", "forward"),
    Cell("sigkill", "disk", "partial", "tail"),
    Cell("crash:buffer_after_fsync", "disk", "429", "forward"),
    Cell("crash:delivery_after_send", "memory", "partial", "tail"),
    Cell("crash:checkpoint_after_write", "disk", "flap", "tail"),
]


@pytest.fixture
def proxy(es_url):
    parts = urlsplit(es_url)
    with BulkFaultProxy(parts.hostname or "127.0.0.1", parts.port or 9200) as p:
        yield p


def test_the_diagonal_covers_every_kind():
    assert {c.stop.split(":")[0] for c in DIAGONAL} == {s.split(":")[0] for s in STOPS}
    assert {c.buffer for c in DIAGONAL} == set(BUFFERS)
    assert {c.output for c in DIAGONAL} == set(OUTPUTS)
    assert {c.source for c in DIAGONAL} == set(SOURCES)
    assert set(DIAGONAL) <= set(all_cells())


@pytest.mark.parametrize("cell", DIAGONAL, ids=lambda c: c.id)
def test_cell(cell, es_url, proxy, tmp_path):
    CellRun(cell, tmp_path, es_url, proxy).run()


@pytest.mark.slow
@pytest.mark.parametrize("cell", [c for c in all_cells() if c not in DIAGONAL],
                         ids=lambda c: c.id)
def test_every_cell(cell, es_url, proxy, tmp_path):
    CellRun(cell, tmp_path, es_url, proxy).run()


class RepeatedKills(CellRun):
    """SIGKILL at random moments, several times in a row, before the final run."""

    kills = 5

    def phase_one(self) -> None:
        rng = random.Random(self.cell.id)
        self.proxy.set_mode(self.cell.output)
        for i in range(self.kills):
            if self.files is not None:
                self.files.write(300)
            self.agent.start()
            self._start_client()
            try:
                self.agent.wait_healthy()
                time.sleep(rng.uniform(0.2, 1.5))
            finally:
                self.agent.kill()
            self.notes.append(f"kill {i} done")


@pytest.mark.slow
@pytest.mark.parametrize("cell", [Cell("sigkill", b, o, s) for b in BUFFERS
                                  for o in ("flap", "partial") for s in SOURCES],
                         ids=lambda c: c.id)
def test_repeated_random_kills(cell, es_url, proxy, tmp_path):
    RepeatedKills(cell, tmp_path, es_url, proxy).run()
