"""Tail source: container log files -> acknowledged batches (spec §2; reliability §4 A).

Modules, one job each: ``config`` (settings), ``paths`` (tag and Kubernetes names from a
path), ``timestamps`` (runtime time parsing), ``formats`` (CRI / Docker batch decoders),
``partials`` (split-message reassembly), ``identity`` (file identity, doc ids),
``progress`` (acknowledged-prefix tracking), ``checkpoints`` (crash-safe positions),
``discovery`` (globs and file events), ``reader`` (one open file), ``files`` (which reader
reads which path; rotation and deletion), ``source`` (the loop), ``bench`` (decode speed).
"""

from shipper.sources.tail.config import TailConfig
from shipper.sources.tail.source import TailSource

__all__ = ["TailConfig", "TailSource"]
