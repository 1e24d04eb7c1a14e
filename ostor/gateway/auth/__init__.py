"""Request authentication: AWS Signature Version 4 (headers, presigned URLs, aws-chunked bodies)."""
