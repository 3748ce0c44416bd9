"""Tail source: container log files -> acknowledged batches (spec §2; reliability §4 A).

Modules, one job each: ``config`` (settings), ``paths`` (tag and Kubernetes names from a
path), ``timestamps`` (runtime time parsing), ``decoding`` and ``formats`` (CRI / Docker
batch decoders), ``partials`` (split-message reassembly), ``multiline`` (stack traces),
``identity`` (file identity, doc ids), ``progress`` (acknowledged-prefix tracking),
``checkpoints`` (crash-safe positions and generation ledger), ``discovery`` (globs, file
events, self-exclusion), ``reader`` and ``chunks`` (one file incarnation), ``lineage`` (a
file's rotated generations: read, skip or count as lost), ``recovery`` (applying that, and
truncations), ``slots`` (the open-file cap), ``files`` (which reader reads which path),
``readloop`` (read, emit, acknowledge, hand over, retire), ``source`` (the two loops),
``bench`` (decode speed). What the source guarantees is in docs/OPERATIONS.md ("Tailing").
"""

from shipper.sources.tail.config import TailConfig
from shipper.sources.tail.source import TailSource

__all__ = ["TailConfig", "TailSource"]
