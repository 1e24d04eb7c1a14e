"""aws-chunked uploads: unsigned with a checksum trailer, signed chunks, signed trailers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import zlib

import pytest
from botocore.exceptions import ClientError

from tests.gateway.conftest import SECRET_KEY, raw_request

EMPTY = hashlib.sha256(b"").hexdigest()


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def unsigned_body(data: bytes, trailer: str | None) -> list[bytes]:
    out = [f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in pieces(data, 7000)]
    out.append(b"0\r\n" + (f"x-amz-checksum-crc32:{trailer}\r\n".encode() if trailer else b"") + b"\r\n")
    return out


def chunked_headers(data: bytes, trailer: bool = True) -> dict:
    headers = {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data))}
    if trailer:
        headers["x-amz-trailer"] = "x-amz-checksum-crc32"
    return headers


def test_unsigned_trailer_upload(server, s3, bucket):
    data = bytes(range(256)) * 100
    status, _, body, _ = raw_request(server, "PUT", f"/{bucket}/chunked", unsigned_body(data, crc32_b64(data)),
                                     chunked_headers(data), payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                                     chunked=True)
    assert status == 200, body
    got = s3.get_object(Bucket=bucket, Key="chunked", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got["ChecksumCRC32"] == crc32_b64(data)
    assert "ContentEncoding" not in got  # aws-chunked is framing, not the object's encoding


def test_unsigned_trailer_bad_checksum(server, s3, bucket):
    data = b"x" * 20000
    status, _, body, _ = raw_request(server, "PUT", f"/{bucket}/bad", unsigned_body(data, crc32_b64(b"other")),
                                     chunked_headers(data), payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                                     chunked=True)
    assert status == 400 and b"<Code>BadDigest</Code>" in body
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="bad")


def _signing_key(date: str) -> bytes:
    key = ("AWS4" + SECRET_KEY).encode()
    for part in (date, "us-east-1", "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def signed_body(data: bytes, headers: dict, trailer: bool, corrupt: bool = False) -> list[bytes]:
    amz_date = headers["X-Amz-Date"]
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
    key = _signing_key(amz_date[:8])
    previous = headers["Authorization"].rsplit("Signature=", 1)[1]
    out = []
    for piece in pieces(data, 8192) + [b""]:
        sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, previous, EMPTY,
                         hashlib.sha256(piece).hexdigest()])
        previous = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
        if corrupt and piece:
            piece = piece[:-1] + b"!"
        out.append(f"{len(piece):x};chunk-signature={previous}\r\n".encode() + piece + b"\r\n")
    if trailer:
        out[-1] = out[-1][:-2]  # the last chunk's CRLF is followed by the trailers
        line = f"x-amz-checksum-crc32:{crc32_b64(data)}\n"
        sts = "\n".join(["AWS4-HMAC-SHA256-TRAILER", amz_date, scope, previous,
                         hashlib.sha256(line.encode()).hexdigest()])
        signature = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
        out.append(line.replace("\n", "\r\n").encode() + f"x-amz-trailer-signature:{signature}\r\n\r\n".encode())
    return out


@pytest.mark.parametrize("trailer", [False, True])
def test_signed_chunks(server, s3, bucket, trailer):
    data = b"signed chunk data " * 2000
    mode = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" + ("-TRAILER" if trailer else "")
    status, _, body, _ = raw_request(server, "PUT", f"/{bucket}/signed", None, chunked_headers(data, trailer),
                                     payload_hash=mode, chunked=True,
                                     make_body=lambda h: signed_body(data, h, trailer))
    assert status == 200, body
    assert s3.get_object(Bucket=bucket, Key="signed")["Body"].read() == data


def test_signed_chunks_tampered(server, s3, bucket):
    data = b"tamper " * 3000
    status, _, body, _ = raw_request(server, "PUT", f"/{bucket}/tampered", None, chunked_headers(data, False),
                                     payload_hash="STREAMING-AWS4-HMAC-SHA256-PAYLOAD", chunked=True,
                                     make_body=lambda h: signed_body(data, h, False, corrupt=True))
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="tampered")
