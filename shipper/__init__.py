"""shipper: a Kubernetes log shipper that loses nothing and duplicates nothing."""

__version__ = "0.1.0"
