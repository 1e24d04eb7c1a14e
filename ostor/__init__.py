"""ostor: an S3-compatible object store (gateway, name servers, object servers)."""

__version__ = "0.1.0"
