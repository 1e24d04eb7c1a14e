"""Large multipart transfers through real clients: boto3's transfer manager, `aws s3 cp`, rclone.

These use a server of their own whose data directory is removed afterwards, so the
gigabytes they store never pile up in pytest's kept temporary directories.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from awscrt import checksums as crt

from tests.gateway.conftest import ACCESS_KEY, SECRET_KEY, ServerProcess, make_client

MiB = 1024 * 1024
GiB = 1024 * MiB


@pytest.fixture(scope="module")
def big_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("ostor-large")
    proc = ServerProcess(root / "data").start()
    yield proc
    proc.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def big_s3(big_server):
    return make_client(big_server.endpoint)


def _md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while chunk := handle.read(8 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


def test_transfer_manager_1gib_with_default_checksums(big_s3, tmp_path):
    from boto3.s3.transfer import TransferConfig

    source, target = tmp_path / "one.gib", tmp_path / "back.gib"
    chunk = 16 * MiB
    part_crcs = []
    with open(source, "wb") as handle:
        for _ in range(GiB // chunk):
            data = os.urandom(chunk)
            part_crcs.append(crt.crc32(data).to_bytes(4, "big"))
            handle.write(data)
    config = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=chunk, max_concurrency=8)
    big_s3.create_bucket(Bucket="large")
    big_s3.upload_file(str(source), "large", "one.gib", Config=config)
    head = big_s3.head_object(Bucket="large", Key="one.gib", ChecksumMode="ENABLED")
    assert head["ContentLength"] == GiB and head["PartsCount"] == GiB // chunk
    # boto3's default (when_supported) protection: CRC32 on every part, a COMPOSITE object checksum.
    expected = base64.b64encode(crt.crc32(b"".join(part_crcs)).to_bytes(4, "big")).decode()
    assert head["ChecksumCRC32"] == f"{expected}-{GiB // chunk}" and head["ChecksumType"] == "COMPOSITE"
    big_s3.download_file("large", "one.gib", str(target), Config=config)
    assert _md5_of(target) == _md5_of(source)
    source.unlink()
    target.unlink()
    big_s3.delete_object(Bucket="large", Key="one.gib")
    big_s3.delete_bucket(Bucket="large")


def _cli_env(server, workdir: Path) -> dict[str, str]:
    # 64 MiB parts (96 for 6 GiB) rather than the CLI's 8 MiB default keep the test's time in bounds;
    # the client still sends its default CRC32 with every part.
    config = workdir / "aws-config"
    config.write_text("[default]\ns3 =\n  multipart_chunksize = 64MB\n  max_concurrent_requests = 4\n")
    return dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
                AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL=server.endpoint,
                AWS_CONFIG_FILE=str(config), AWS_SHARED_CREDENTIALS_FILE=os.devnull)


def test_aws_cli_cp_6gib_sparse_file(big_server, big_s3, tmp_path):
    aws = shutil.which("aws", path=str(Path(sys.executable).parent)) or shutil.which("aws")
    if aws is None:
        pytest.skip("the AWS CLI is not installed")
    source = tmp_path / "sparse.img"
    size = 6 * GiB
    with open(source, "wb") as handle:
        handle.truncate(size)
        # A few non-zero islands so that misplaced parts cannot go unnoticed.
        for offset in (0, 3 * GiB - 7, size - MiB):
            handle.seek(offset)
            handle.write(os.urandom(MiB))
    env = _cli_env(big_server, tmp_path)
    subprocess.run([aws, "s3", "mb", "s3://sparse", "--endpoint-url", big_server.endpoint], env=env, check=True,
                   capture_output=True)
    subprocess.run([aws, "s3", "cp", str(source), "s3://sparse/disk.img", "--endpoint-url", big_server.endpoint,
                    "--only-show-errors"], env=env, check=True, timeout=600)
    head = big_s3.head_object(Bucket="sparse", Key="disk.img")
    assert head["ContentLength"] == size and int(head["PartsCount"]) > 1
    # Stream it back through the CLI and compare with the file, byte for byte, without a second copy on disk.
    download = subprocess.Popen([aws, "s3", "cp", "s3://sparse/disk.img", "-", "--endpoint-url",
                                 big_server.endpoint], env=env, stdout=subprocess.PIPE)
    got, want = hashlib.md5(), hashlib.md5()
    with open(source, "rb") as handle:
        assert download.stdout is not None
        while chunk := download.stdout.read(8 * MiB):
            got.update(chunk)
            want.update(handle.read(len(chunk)))
        assert handle.read(1) == b""
    assert download.wait(timeout=600) == 0
    assert got.hexdigest() == want.hexdigest()
    source.unlink()
    big_s3.delete_object(Bucket="sparse", Key="disk.img")
    big_s3.delete_bucket(Bucket="sparse")


def test_rclone_copy_multipart(big_server, big_s3, tmp_path):
    rclone = shutil.which("rclone")
    if rclone is None:
        pytest.skip("rclone is not installed")
    (tmp_path / "up").mkdir()
    source = tmp_path / "up" / "file.bin"
    source.write_bytes(os.urandom(23 * MiB + 5))
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}  # plain HTTP; rclone rejects it
    env.update(RCLONE_CONFIG=os.devnull, RCLONE_CONFIG_OSTOR_TYPE="s3",
               RCLONE_CONFIG_OSTOR_PROVIDER="Other", RCLONE_CONFIG_OSTOR_ENDPOINT=big_server.endpoint,
               RCLONE_CONFIG_OSTOR_ACCESS_KEY_ID=ACCESS_KEY, RCLONE_CONFIG_OSTOR_SECRET_ACCESS_KEY=SECRET_KEY,
               RCLONE_CONFIG_OSTOR_REGION="us-east-1")
    big_s3.create_bucket(Bucket="rclone")
    flags = ["--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", "--s3-upload-concurrency", "4"]
    subprocess.run([rclone, "copy", str(tmp_path / "up"), "ostor:rclone/dir", *flags], env=env, check=True,
                   timeout=300)
    head = big_s3.head_object(Bucket="rclone", Key="dir/file.bin")
    assert head["ContentLength"] == source.stat().st_size and head["ETag"].endswith('-5"')
    subprocess.run([rclone, "check", str(tmp_path / "up"), "ostor:rclone/dir"], env=env, check=True, timeout=300)
    subprocess.run([rclone, "copy", "ostor:rclone/dir", str(tmp_path / "down")], env=env, check=True, timeout=300)
    assert (tmp_path / "down" / "file.bin").read_bytes() == source.read_bytes()
    big_s3.delete_object(Bucket="rclone", Key="dir/file.bin")
    big_s3.delete_bucket(Bucket="rclone")
