"""Forward source: the Fluentd forward protocol server (spec forward §1).

Modules, one job each: ``config`` (settings), ``handshake`` (HELO/PING/PONG, shared key and
users), ``decoder`` (framing, carrier modes, gzip, EventTime, the JSON variant), ``events``
(entries to JSON-safe records, times, tags and document ids), ``connection`` (one client:
backpressure and acks), ``source`` (listeners, TLS, UDP heartbeat, limits, shutdown).
"""

from shipper.sources.forward.config import ForwardConfig
from shipper.sources.forward.source import ForwardSource

__all__ = ["ForwardConfig", "ForwardSource"]
