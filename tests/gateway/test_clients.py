"""Real S3 clients against the `ostor server` process: aws CLI, s3cmd, rclone, curl with presigned URLs."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.gateway.conftest import ACCESS_KEY, SECRET_KEY

MiB = 1024 * 1024
AWS = shutil.which("aws", path=os.path.dirname(sys.executable)) or shutil.which("aws")


def run(args: list[str], env: dict | None = None, timeout: float = 300) -> str:
    out = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
    assert out.returncode == 0, f"{args[:3]} failed:\n{out.stderr}\n{out.stdout}"
    return out.stdout


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(8 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


def make_tree(root: Path) -> dict[str, bytes]:
    files = {"a.txt": b"alpha", "dir/b c.bin": os.urandom(300 * 1024), "dir/sub/ü+%.dat": os.urandom(7 * MiB),
             "empty": b""}
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


def compare_tree(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        assert (root / name).read_bytes() == data, name


@pytest.fixture
def aws_env(server, tmp_path):
    return dict(os.environ, AWS_ENDPOINT_URL=server.endpoint, AWS_ACCESS_KEY_ID=ACCESS_KEY,
                AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_DEFAULT_REGION="us-east-1",
                AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))


@pytest.mark.skipif(AWS is None, reason="the aws CLI is not installed (pip install awscli)")
def test_aws_cli(aws_env, bucket, tmp_path):
    src = tmp_path / "src"
    files = make_tree(src)
    run([AWS, "s3", "sync", str(src), f"s3://{bucket}/tree"], aws_env)
    listing = run([AWS, "s3", "ls", "--recursive", f"s3://{bucket}/tree/"], aws_env)
    assert all(name in listing for name in files)
    run([AWS, "s3", "sync", f"s3://{bucket}/tree", str(tmp_path / "back")], aws_env)
    compare_tree(tmp_path / "back", files)
    run([AWS, "s3", "cp", str(src / "a.txt"), f"s3://{bucket}/single key.txt"], aws_env)
    run([AWS, "s3", "cp", f"s3://{bucket}/single key.txt", str(tmp_path / "one.txt")], aws_env)
    assert (tmp_path / "one.txt").read_bytes() == b"alpha"
    run([AWS, "s3", "rm", "--recursive", f"s3://{bucket}/tree"], aws_env)
    run([AWS, "s3", "rm", f"s3://{bucket}/single key.txt"], aws_env)
    assert run([AWS, "s3", "ls", f"s3://{bucket}/"], aws_env).strip() == ""


@pytest.mark.slow
@pytest.mark.skipif(AWS is None, reason="the aws CLI is not installed (pip install awscli)")
def test_aws_cli_1gib(aws_env, bucket, tmp_path):
    big = tmp_path / "big.bin"
    block = os.urandom(16 * MiB)
    with open(big, "wb") as handle:
        for i in range(64):  # 1 GiB; every 16 MiB block differs so misplaced pieces would show
            handle.write(i.to_bytes(8, "big") + block[8:])
    expected = sha256_file(big)
    run([AWS, "s3", "cp", str(big), f"s3://{bucket}/big.bin"], aws_env, timeout=600)
    big.unlink()
    back = tmp_path / "back.bin"
    run([AWS, "s3", "cp", f"s3://{bucket}/big.bin", str(back)], aws_env, timeout=600)
    assert back.stat().st_size == 1024 * MiB and sha256_file(back) == expected
    back.unlink()
    run([AWS, "s3", "rm", f"s3://{bucket}/big.bin"], aws_env)


@pytest.mark.skipif(shutil.which("s3cmd") is None, reason="s3cmd is not installed")
def test_s3cmd_sigv4(server, tmp_path):
    cfg = tmp_path / "s3cfg"
    cfg.write_text(f"[default]\naccess_key = {ACCESS_KEY}\nsecret_key = {SECRET_KEY}\n"
                   f"host_base = 127.0.0.1:{server.port}\nhost_bucket = 127.0.0.1:{server.port}\n"
                   "use_https = False\nbucket_location = us-east-1\n")
    name = "s3cmd-" + uuid.uuid4().hex[:8]
    s3cmd = ["s3cmd", "-c", str(cfg)]
    src = tmp_path / "src"
    files = make_tree(src)
    run(s3cmd + ["mb", f"s3://{name}"])
    run(s3cmd + ["sync", f"{src}/", f"s3://{name}/tree/"])
    listing = run(s3cmd + ["ls", "-r", f"s3://{name}"])
    assert all(n in listing for n in files if n != "empty")
    run(s3cmd + ["put", str(src / "a.txt"), f"s3://{name}/put.txt"])
    run(s3cmd + ["get", f"s3://{name}/put.txt", str(tmp_path / "got.txt")])
    assert (tmp_path / "got.txt").read_bytes() == b"alpha"
    run(s3cmd + ["sync", f"s3://{name}/tree/", f"{tmp_path / 'back'}/"])
    compare_tree(tmp_path / "back", files)
    run(s3cmd + ["del", "--recursive", "--force", f"s3://{name}"])
    run(s3cmd + ["rb", f"s3://{name}"])


@pytest.mark.skipif(shutil.which("rclone") is None, reason="rclone is not installed")
def test_rclone(server, tmp_path):
    env = dict(os.environ, RCLONE_CONFIG=str(tmp_path / "rclone.conf"))
    env.pop("AWS_CA_BUNDLE", None)  # rclone's SDK refuses a CA bundle on its custom HTTP transport
    (tmp_path / "rclone.conf").write_text(
        f"[ostor]\ntype = s3\nprovider = Other\naccess_key_id = {ACCESS_KEY}\n"
        f"secret_access_key = {SECRET_KEY}\nendpoint = {server.endpoint}\nregion = us-east-1\n")
    name = "rclone-" + uuid.uuid4().hex[:8]
    src = tmp_path / "src"
    files = make_tree(src)
    run(["rclone", "mkdir", f"ostor:{name}"], env)
    run(["rclone", "sync", str(src), f"ostor:{name}/tree"], env)
    listing = run(["rclone", "ls", f"ostor:{name}"], env)
    assert all(n in listing for n in files)
    run(["rclone", "copyto", str(src / "a.txt"), f"ostor:{name}/put.txt"], env)
    run(["rclone", "copyto", f"ostor:{name}/put.txt", str(tmp_path / "got.txt")], env)
    assert (tmp_path / "got.txt").read_bytes() == b"alpha"
    run(["rclone", "sync", f"ostor:{name}/tree", str(tmp_path / "back")], env)
    compare_tree(tmp_path / "back", files)
    run(["rclone", "check", str(src), f"ostor:{name}/tree"], env)
    run(["rclone", "delete", f"ostor:{name}"], env)
    run(["rclone", "rmdir", f"ostor:{name}"], env)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_presigned(s3, bucket, tmp_path):
    data = os.urandom(2 * MiB + 17)
    (tmp_path / "up").write_bytes(data)
    put = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "curl/ké y"}, ExpiresIn=120)
    run(["curl", "-sf", "-T", str(tmp_path / "up"), put])
    get = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "curl/ké y"}, ExpiresIn=120)
    run(["curl", "-sf", "-o", str(tmp_path / "down"), get])
    assert (tmp_path / "down").read_bytes() == data
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Range: bytes=10-19", get],
                         capture_output=True, text=True, timeout=30)
    assert out.stdout == "206"
