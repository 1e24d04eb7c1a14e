"""The S3 gateway: HTTP, S3 protocol parsing, authentication, authorisation."""
