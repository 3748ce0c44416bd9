"""Per-output buffers: bounded in bytes, chunked, releasing acks when data is safe."""
