"""Name servers: object names and metadata in SQLite B-trees, guards, versions, multipart tables, GC queue."""
