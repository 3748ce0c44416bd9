"""Field types with units, used in the config dataclasses.

``Bytes`` accepts an int or a size string (``2MiB``, ``512k``, ``1GB``); ``Seconds`` accepts a
number or a duration string (``5s``, ``250ms``, ``2m``, ``1h``). Names carry the unit suffix
(``chunk_limit_bytes``, ``flush_interval_secs``) so the value is never ambiguous.
"""

from __future__ import annotations

from typing import Annotated

BYTES_UNIT = "bytes"
SECONDS_UNIT = "seconds"

Bytes = Annotated[int, BYTES_UNIT]
Seconds = Annotated[float, SECONDS_UNIT]
