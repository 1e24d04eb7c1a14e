"""AWS Signature Version 4 verification for the Authorization header and presigned URLs.

Only hmac/hashlib; no HTTP objects here so it can be tested with plain values.
The canonical URI is tried exactly as the client sent it first (what the AWS
SDKs sign for S3, which never normalises paths) and then strictly re-encoded,
which covers clients that percent-encode a few characters differently.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, unquote

from ostor.common.errors import (
    AccessDenied, AuthorizationHeaderMalformed, InvalidAccessKeyId, InvalidArgument, InvalidRequest,
    NotImplemented_,
)
from ostor.common.errors import AuthorizationQueryParametersError, RequestTimeTooSkewed, SignatureDoesNotMatch
from ostor.gateway.users import User

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED = "UNSIGNED-PAYLOAD"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_MODES = {STREAMING_UNSIGNED_TRAILER, STREAMING_SIGNED, STREAMING_SIGNED_TRAILER}
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_SKEW_SECONDS = 15 * 60
MAX_PRESIGN_EXPIRES = 7 * 24 * 3600
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_SPACES = re.compile(r"\s+")

#: Looks up an access key ID: ``(user, secret)`` or None.
KeyLookup = Callable[[str], "tuple[User, str] | None"]


@dataclass(frozen=True)
class SigningContext:
    """What aws-chunked chunk signatures chain from: key, timestamp, scope and the seed signature."""

    key: bytes
    amz_date: str
    scope: str
    seed_signature: str


@dataclass(frozen=True)
class AuthResult:
    """The outcome of authentication: the user (None: anonymous) and how the payload is protected."""

    user: User | None
    access_key: str | None
    payload_hash: str  # 64 hex, UNSIGNED-PAYLOAD or a STREAMING-* mode
    signing: SigningContext | None = None


@dataclass(frozen=True)
class RequestParts:
    """The parts of an HTTP request that SigV4 covers."""

    method: str
    raw_path: str  # as sent, percent-encoded, without the query string
    raw_query: str
    headers: object  # case-insensitive multidict with getall()
    vhost_bucket: str | None = None  # the bucket named by Host (virtual-hosted style); SigV2 signs it


@functools.lru_cache(maxsize=256)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The SigV4 signing key for one day, region and service."""
    key = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def sign(key: bytes, string_to_sign: str) -> str:
    """Hex HMAC-SHA256 of a string to sign."""
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def parse_query(raw_query: str) -> list[tuple[str, str]]:
    """Query parameters decoded, in order; '+' stays '+' (S3 clients encode spaces as %20)."""
    return list(_parse_query(raw_query)) if raw_query else []


@functools.lru_cache(maxsize=64)
def _parse_query(raw_query: str) -> tuple[tuple[str, str], ...]:
    # Cached: routing, authentication and the handler context each ask for the same query.
    pairs = []
    for item in raw_query.split("&"):
        if item:
            name, _, value = item.partition("=")
            pairs.append((_unquote(name), _unquote(value)))
    return tuple(pairs)


def _unquote(text: str) -> str:
    return _unquote_cached(text) if "%" in text else text


@functools.lru_cache(maxsize=1024)
def _unquote_cached(text: str) -> str:
    # The encoded values repeat from request to request (X-Amz-Credential above all).
    return unquote(text)


_UNRESERVED = re.compile(r"[A-Za-z0-9\-_.~]*")
_UNRESERVED_PATH = re.compile(r"[A-Za-z0-9\-_.~/]*")


def _strict_quote(text: str) -> str:
    """RFC 3986 encoding as SigV4 wants it; most names and values need none (no quote() call)."""
    return text if _UNRESERVED.fullmatch(text) else _quote_cached(text)


@functools.lru_cache(maxsize=512)
def _quote_cached(text: str) -> str:
    # The values that need encoding repeat (X-Amz-Credential, X-Amz-SignedHeaders): cache them.
    return quote(text, safe="-_.~")


def canonical_query(pairs: list[tuple[str, str]], skip: str | None = None) -> str:
    """Strictly encoded, sorted query string (``skip`` drops X-Amz-Signature for presigned URLs)."""
    encoded = sorted((_strict_quote(n), _strict_quote(v)) for n, v in pairs if n != skip)
    return "&".join(f"{n}={v}" for n, v in encoded)


def canonical_headers(headers: object, signed: list[str]) -> str:
    """``name:value\\n`` for every signed header, values trimmed with inner whitespace collapsed."""
    lines = []
    for name in signed:
        values = headers.getall(name, [])  # type: ignore[attr-defined]
        lines.append(f"{name}:{','.join(_SPACES.sub(' ', v.strip()) for v in values)}\n")
    return "".join(lines)


def _uri_candidates(raw_path: str) -> list[str]:
    if _UNRESERVED_PATH.fullmatch(raw_path):
        return [raw_path]  # nothing to re-encode
    strict = quote(unquote(raw_path), safe="/-_.~")
    return [raw_path] if strict == raw_path else [raw_path, strict]


@functools.lru_cache(maxsize=1024)
def _parse_time(amz_date: str) -> _dt.datetime:
    try:
        return _dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=_dt.timezone.utc)
    except ValueError:
        raise AccessDenied("AWS authentication requires a valid Date or x-amz-date header") from None


def _amz_time(now: float) -> str:
    return _dt.datetime.fromtimestamp(now, _dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _header_date(headers: object) -> str:
    amz_date = headers.get("x-amz-date")  # type: ignore[attr-defined]
    if amz_date:
        return amz_date
    date = headers.get("date")  # type: ignore[attr-defined]
    if not date:
        raise AccessDenied("AWS authentication requires a valid Date or x-amz-date header")
    try:
        parsed = _dt.datetime.strptime(date, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=_dt.timezone.utc)
    except ValueError:
        raise AccessDenied("AWS authentication requires a valid Date or x-amz-date header") from None
    return parsed.strftime("%Y%m%dT%H%M%SZ")


def check_skew(moment: float, now: float) -> None:
    """RequestTimeTooSkewed when the request time is more than 15 minutes from the server's."""
    if abs(moment - now) > MAX_SKEW_SECONDS:
        raise RequestTimeTooSkewed(RequestTime=_amz_time(moment), ServerTime=_amz_time(now),
                                   MaxAllowedSkewMilliseconds=str(MAX_SKEW_SECONDS * 1000))


def to_bytes_hex(text: str) -> str:
    """The ``StringToSignBytes`` form S3 puts in SignatureDoesNotMatch: hex bytes separated by spaces."""
    return " ".join(f"{byte:02x}" for byte in text.encode("utf-8", "surrogateescape"))


def _parse_credential(credential: str, error: type, header: bool) -> tuple[str, str, str, str]:
    """Split ``AKID/YYYYMMDD/REGION/s3/aws4_request``; ``error`` (with S3's wording) when it is not that.

    Any region is accepted (one ostor endpoint serves whatever region a client was configured for),
    but it must be present.
    """
    lead = "The authorization header is malformed;" if header else "Error parsing the X-Amz-Credential parameter;"
    parts = credential.split("/")
    if len(parts) != 5 or not parts[0]:
        raise error(f"{lead} the Credential is mal-formed; expecting "
                    f"\"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".")
    if parts[4] != "aws4_request":
        raise error(f"{lead} incorrect terminal \"{parts[4]}\". This endpoint uses \"aws4_request\".")
    if parts[3] != "s3":
        raise error(f"{lead} incorrect service \"{parts[3]}\". This endpoint belongs to \"s3\".")
    if not parts[2]:
        raise error(f"{lead} the region '' is wrong; expecting a region such as 'us-east-1'", Region="")
    if len(parts[1]) != 8 or not parts[1].isdigit():
        raise error(f"{lead} incorrect date format \"{parts[1]}\". This date in the credential must be "
                    f"in the format \"yyyyMMdd\".")
    return parts[0], parts[1], parts[2], parts[3]


def _verify(parts: RequestParts, lookup: KeyLookup, access_key: str, date: str, region: str,
            amz_date: str, signed: list[str], signature: str, payload_hash: str,
            pairs: list[tuple[str, str]], skip: str | None) -> tuple[User, SigningContext]:
    found = lookup(access_key)
    if found is None:
        raise InvalidAccessKeyId(AWSAccessKeyId=access_key)
    user, secret = found
    if "host" not in signed:
        raise AccessDenied("The host header must be signed.")
    key = signing_key(secret, date, region, "s3")
    scope = f"{date}/{region}/s3/aws4_request"
    query = canonical_query(pairs, skip)
    headers = canonical_headers(parts.headers, signed)
    attempts = []
    for uri in _uri_candidates(parts.raw_path):
        request = "\n".join([parts.method, uri, query, headers, ";".join(signed), payload_hash])
        string_to_sign = "\n".join([ALGORITHM, amz_date, scope,
                                    hashlib.sha256(request.encode()).hexdigest()])
        if hmac.compare_digest(sign(key, string_to_sign), signature):
            return user, SigningContext(key, amz_date, scope, signature)
        attempts.append((request, string_to_sign))
    request, string_to_sign = attempts[0]
    raise SignatureDoesNotMatch(AWSAccessKeyId=access_key, StringToSign=string_to_sign,
                                SignatureProvided=signature, StringToSignBytes=to_bytes_hex(string_to_sign),
                                CanonicalRequest=request, CanonicalRequestBytes=to_bytes_hex(request))


def authenticate(parts: RequestParts, lookup: KeyLookup, now: float) -> AuthResult:
    """Verify the request's signature; anonymous requests get ``user=None`` (authorisation denies them)."""
    from ostor.gateway.auth import sigv2  # SigV2 builds on this module's types

    authorization = parts.headers.get("authorization")  # type: ignore[attr-defined]
    pairs = parse_query(parts.raw_query)
    query = dict(pairs)
    if authorization:
        if authorization.startswith("AWS "):
            return sigv2.authenticate_header(parts, authorization, lookup, now)
        return _authenticate_header(parts, authorization, lookup, now)
    if "X-Amz-Algorithm" in query or "X-Amz-Credential" in query:
        return _authenticate_presigned(parts, pairs, query, lookup, now)
    if "Signature" in query and "AWSAccessKeyId" in query:
        return sigv2.authenticate_query(parts, query, lookup, now)
    if "AWSAccessKeyId" in query:
        raise AccessDenied("Query-string authentication requires the Signature, Expires and "
                           "AWSAccessKeyId parameters")
    return AuthResult(None, None, UNSIGNED)


def _authenticate_header(parts: RequestParts, authorization: str, lookup: KeyLookup,
                         now: float) -> AuthResult:
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise InvalidArgument("Unsupported Authorization Type", ArgumentName="Authorization",
                              ArgumentValue=authorization)
    fields = {}
    for item in rest.split(","):
        name, _, value = item.strip().partition("=")
        fields[name] = value
    try:
        credential, signed, signature = fields["Credential"], fields["SignedHeaders"], fields["Signature"]
    except KeyError:
        raise AuthorizationHeaderMalformed("The authorization header is malformed; it must contain "
                                           "Credential, SignedHeaders and Signature.") from None
    access_key, date, region, _ = _parse_credential(credential, AuthorizationHeaderMalformed, True)
    amz_date = _header_date(parts.headers)
    check_skew(_parse_time(amz_date).timestamp(), now)
    if amz_date[:8] != date:
        raise AuthorizationHeaderMalformed(f"The authorization header is malformed; Invalid credential date "
                                           f"\"{date}\". This date is not the same as X-Amz-Date: \"{amz_date[:8]}\".")
    payload_hash = parts.headers.get("x-amz-content-sha256")  # type: ignore[attr-defined]
    if payload_hash is None:
        raise InvalidRequest("Missing required header for this request: x-amz-content-sha256")
    if payload_hash.startswith("STREAMING-AWS4-ECDSA"):
        raise NotImplemented_("SigV4a streaming signatures are not implemented.")
    if not (_HEX64.match(payload_hash) or payload_hash == UNSIGNED or payload_hash in STREAMING_MODES):
        raise InvalidArgument("x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING-* value, "
                              "or a valid SHA-256 hex digest.", ArgumentName="x-amz-content-sha256",
                              ArgumentValue=payload_hash)
    user, signing = _verify(parts, lookup, access_key, date, region, amz_date,
                            signed.lower().split(";"), signature, payload_hash,
                            parse_query(parts.raw_query), None)
    return AuthResult(user, access_key, payload_hash, signing)


def _authenticate_presigned(parts: RequestParts, pairs: list[tuple[str, str]], query: dict[str, str],
                            lookup: KeyLookup, now: float) -> AuthResult:
    if query["X-Amz-Algorithm"] != ALGORITHM:
        raise AuthorizationQueryParametersError("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"")
    try:
        credential, amz_date = query["X-Amz-Credential"], query["X-Amz-Date"]
        signed, signature = query["X-Amz-SignedHeaders"], query["X-Amz-Signature"]
        expires_text = query["X-Amz-Expires"]
    except KeyError:
        raise AuthorizationQueryParametersError(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
            "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.") from None
    access_key, date, region, _ = _parse_credential(credential, AuthorizationQueryParametersError, False)
    try:
        expires = int(expires_text)
    except ValueError:
        raise AuthorizationQueryParametersError("X-Amz-Expires should be a number") from None
    if expires < 0:
        raise AuthorizationQueryParametersError("X-Amz-Expires must be non-negative")
    if expires > MAX_PRESIGN_EXPIRES:
        raise AuthorizationQueryParametersError(
            "X-Amz-Expires must be less than a week (in seconds) that is 604800")
    moment = _parse_time(amz_date)
    if amz_date[:8] != date:
        raise AuthorizationQueryParametersError(f"Invalid credential date \"{date}\". This date is not the "
                                                f"same as X-Amz-Date: \"{amz_date[:8]}\".")
    if moment.timestamp() - now > MAX_SKEW_SECONDS:
        raise AccessDenied("Request is not valid yet")
    if now > moment.timestamp() + expires:
        raise AccessDenied("Request has expired", **{"X-Amz-Expires": expires_text,
                                                     "Expires": _amz_time(moment.timestamp() + expires),
                                                     "ServerTime": _amz_time(now)})
    payload_hash = query.get("X-Amz-Content-Sha256") or UNSIGNED
    user, signing = _verify(parts, lookup, access_key, date, region, amz_date, signed.lower().split(";"),
                            signature, payload_hash, pairs, "X-Amz-Signature")
    return AuthResult(user, access_key, payload_hash, signing)
