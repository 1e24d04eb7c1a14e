"""Thin S3 operation handlers: parse the request, call the engine, serialise the answer."""
