"""SigV2: botocore's "s3" signer (header and presigned query strings), s3cmd with signature_v2, errors."""

from __future__ import annotations

import email.utils
import http.client
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError

from ostor.gateway.auth import sigv2
from tests.gateway.conftest import ACCESS_KEY, SECRET_KEY, make_client


@pytest.fixture(scope="module")
def v2(server):
    return make_client(server.endpoint, signature_version="s3")


def test_header_auth_roundtrip(v2, bucket):
    key = "v2 dir/κλειδί+plus%percent"
    v2.put_object(Bucket=bucket, Key=key, Body=b"signed with v2", ContentType="text/plain",
                  Metadata={"colour": "blue"})
    got = v2.get_object(Bucket=bucket, Key=key)
    assert got["Body"].read() == b"signed with v2"
    assert got["Metadata"] == {"colour": "blue"} and got["ContentType"] == "text/plain"
    assert [o["Key"] for o in v2.list_objects(Bucket=bucket)["Contents"]] == [key]
    # Sub-resources are part of the V2 canonical resource.
    upload = v2.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    part = v2.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=b"p1")
    v2.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert v2.get_object(Bucket=bucket, Key="mp", ResponseContentType="x/y")["ContentType"] == "x/y"
    v2.delete_object(Bucket=bucket, Key=key)


def test_presigned_query_v2(v2, s3, bucket):
    key = "pre v2/ü+1"
    put = v2.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300)
    assert "AWSAccessKeyId=" in put and "Signature=" in put and "X-Amz-" not in put
    # urllib would add a Content-Type the signature does not cover (S3 refuses that too): send none.
    url = urllib.parse.urlsplit(put)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.request("PUT", f"{url.path}?{url.query}", body=b"v2 presigned")
    assert conn.getresponse().status == 200
    conn.close()
    get = v2.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300)
    with urllib.request.urlopen(get) as resp:
        assert resp.read() == b"v2 presigned"
    # boto3's default presigner (SigV4) on the same object.
    with urllib.request.urlopen(s3.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300)) as resp:
        assert resp.read() == b"v2 presigned"


def test_presigned_v2_expired_and_tampered(v2, bucket):
    v2.put_object(Bucket=bucket, Key="e", Body=b"x")
    url = v2.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "e"}, ExpiresIn=-10)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url)
    body = err.value.read()
    assert err.value.code == 403 and b"<Code>AccessDenied</Code>" in body and b"Request has expired" in body
    url = v2.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "e"}, ExpiresIn=60)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url.replace("/e?", "/f?"))
    body = err.value.read()
    assert err.value.code == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body
    assert b"<StringToSign>GET\n\n\n" in body and b"<StringToSignBytes>47 45 54 0a" in body


def test_wrong_secret_v2(server, bucket):
    client = make_client(server.endpoint, secret="nope" * 10, signature_version="s3")
    with pytest.raises(ClientError) as err:
        client.list_objects(Bucket=bucket)
    assert err.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert "StringToSign" in err.value.response["Error"]


def _raw_v2(server, method, path, headers):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_v2_x_amz_date_and_skew(server, bucket):
    now = email.utils.formatdate(usegmt=True)
    sts = f"GET\n\n\n\nx-amz-date:{now}\n/{bucket}"
    status, _ = _raw_v2(server, "GET", f"/{bucket}", {"x-amz-date": now,
                                                      "Authorization": f"AWS {ACCESS_KEY}:{sigv2.sign(SECRET_KEY, sts)}"})
    assert status == 200
    old = email.utils.formatdate(time.time() - 3600, usegmt=True)
    sts = f"GET\n\n\n{old}\n/{bucket}"
    status, body = _raw_v2(server, "GET", f"/{bucket}", {"Date": old,
                                                         "Authorization": f"AWS {ACCESS_KEY}:{sigv2.sign(SECRET_KEY, sts)}"})
    assert status == 403 and b"RequestTimeTooSkewed" in body
    status, body = _raw_v2(server, "GET", f"/{bucket}", {"Authorization": f"AWS {ACCESS_KEY}:abc"})
    assert status == 403 and b"AccessDenied" in body


def test_sigv4_mismatch_body_and_malformed_scope(server, bucket):
    from tests.gateway.conftest import raw_request

    status, _, body, _ = raw_request(server, "GET", f"/{bucket}", secret="x" * 40)
    assert status == 403
    for tag in (b"StringToSign", b"StringToSignBytes", b"CanonicalRequest", b"CanonicalRequestBytes",
                b"SignatureProvided", b"AWSAccessKeyId"):
        assert b"<" + tag + b">" in body
    auth = (f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20250101/us-east-1/ec2/aws4_request, "
            f"SignedHeaders=host;x-amz-date, Signature=00")
    status, body = _raw_v2(server, "GET", f"/{bucket}", {"Authorization": auth, "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
                                                         "x-amz-date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())})
    assert status == 400 and b"<Code>AuthorizationHeaderMalformed</Code>" in body


@pytest.mark.skipif(shutil.which("s3cmd") is None, reason="s3cmd is not installed")
def test_s3cmd_signature_v2(server, tmp_path):
    cfg = tmp_path / "s3cfg"
    cfg.write_text(f"[default]\naccess_key = {ACCESS_KEY}\nsecret_key = {SECRET_KEY}\n"
                   f"host_base = 127.0.0.1:{server.port}\nhost_bucket = 127.0.0.1:{server.port}\n"
                   "use_https = False\nsignature_v2 = True\ncheck_ssl_certificate = False\n")
    name = "s3cmd-v2-" + uuid.uuid4().hex[:8]

    def s3cmd(*args):
        out = subprocess.run(["s3cmd", "-c", str(cfg), *args], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr + out.stdout
        return out.stdout

    src = tmp_path / "file with space.bin"
    src.write_bytes(bytes(range(256)) * 1000)
    s3cmd("mb", f"s3://{name}")
    s3cmd("put", str(src), f"s3://{name}/dir/a+b.bin")
    assert "dir/a+b.bin" in s3cmd("ls", "-r", f"s3://{name}")
    s3cmd("get", f"s3://{name}/dir/a+b.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()
    s3cmd("del", f"s3://{name}/dir/a+b.bin")
    s3cmd("rb", f"s3://{name}")
