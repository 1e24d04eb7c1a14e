"""A stopped and restarted server finds its data and keys."""

from __future__ import annotations

from tests.gateway.conftest import ServerProcess, make_client


def test_restart_keeps_data(tmp_path):
    server = ServerProcess(tmp_path / "data").start()
    try:
        s3 = make_client(server.endpoint)
        s3.create_bucket(Bucket="persist")
        s3.put_object(Bucket="persist", Key="k e y+1", Body=b"durable")
    finally:
        assert server.stop() == 0  # SIGTERM shuts down cleanly
    server.start()
    try:
        s3 = make_client(server.endpoint)
        assert s3.get_object(Bucket="persist", Key="k e y+1")["Body"].read() == b"durable"
        assert "persist" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    finally:
        server.stop()
