"""Demo and test tooling: a deterministic generator of a Kubernetes node's log tree.

Only the generator API is re-exported here; the demo runner lives in its own modules and is
imported explicitly so that importing the generator stays cheap.
"""

from shipper.demo.loggen import DEFAULT_BASE_TIME, generate_node_logs
from shipper.demo.manifest import FileEntry, Manifest

__all__ = ["DEFAULT_BASE_TIME", "FileEntry", "Manifest", "generate_node_logs"]
