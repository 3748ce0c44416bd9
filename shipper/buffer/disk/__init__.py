"""The disk buffer: crash-safe segment files per output (see ``buffer`` for the contract)."""

from shipper.buffer.disk.buffer import DiskBuffer
from shipper.buffer.disk.chunk import DiskChunk

__all__ = ["DiskBuffer", "DiskChunk"]
