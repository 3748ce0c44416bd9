"""``workers: N``: one node agent in N processes that share the node's log files.

``supervisor`` starts, watches and stops the worker processes and serves the node's telemetry
address; ``role`` tells a worker who it is and what it runs; ``shard`` decides which worker
reads a file; ``statedir`` re-partitions checkpoints and buffers when N changes;
``telemetry`` and ``metrics_merge`` answer /healthz, /readyz and /metrics for all workers.
"""
