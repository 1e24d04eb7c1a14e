"""The engine: S3 semantics over name and object servers, with no HTTP in it."""
