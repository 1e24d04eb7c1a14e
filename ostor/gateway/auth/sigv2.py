"""AWS Signature Version 2 (S3 "HMAC-SHA1") in the Authorization header and in query strings.

StringToSign = VERB \\n Content-MD5 \\n Content-Type \\n Date-or-Expires \\n
CanonicalizedAmzHeaders CanonicalizedResource, signed with HMAC-SHA1 and
base64-encoded. The canonical resource is the path as sent, prefixed with
``/bucket`` for virtual-hosted requests, plus the S3 sub-resources of the
query string. Still sent by s3cmd (``signature_v2``), older SDKs and tools
that presign with ``signature_version="s3"``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import email.utils
import hashlib
import hmac
from urllib.parse import quote, unquote

from ostor.common.errors import AccessDenied, InvalidAccessKeyId, InvalidArgument, SignatureDoesNotMatch
from ostor.gateway.auth.sigv4 import (
    MAX_SKEW_SECONDS, UNSIGNED, AuthResult, KeyLookup, RequestParts, check_skew, parse_query, to_bytes_hex,
)

#: Query parameters that are part of the signed resource (the S3 sub-resources and response overrides).
SUBRESOURCES = frozenset({
    "accelerate", "acl", "analytics", "cors", "defaultObjectAcl", "delete", "intelligent-tiering",
    "inventory", "lifecycle", "location", "logging", "metrics", "notification", "object-lock",
    "ownershipControls", "partNumber", "policy", "publicAccessBlock", "replication", "requestPayment",
    "response-cache-control", "response-content-disposition", "response-content-encoding",
    "response-content-language", "response-content-type", "response-expires", "restore", "retention",
    "legal-hold", "select", "select-type", "storageClass", "tagging", "torrent", "uploadId", "uploads",
    "versionId", "versioning", "versions", "website",
})


def sign(secret: str, string_to_sign: str) -> str:
    """Base64 HMAC-SHA1 of a string to sign."""
    digest = hmac.new(secret.encode(), string_to_sign.encode("utf-8", "surrogateescape"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def canonical_amz_headers(headers: object) -> str:
    """``x-amz-*`` headers, lower-cased and sorted, repeated values joined by commas, one per line."""
    found: dict[str, list[str]] = {}
    for name, value in headers.items():  # type: ignore[attr-defined]
        lower = name.lower()
        if lower.startswith("x-amz-"):
            found.setdefault(lower, []).append(" ".join(value.split()))
    return "".join(f"{name}:{','.join(found[name])}\n" for name in sorted(found))


def canonical_resource(raw_path: str, raw_query: str, vhost_bucket: str | None) -> list[str]:
    """The candidate canonical resources: the path as sent, then strictly re-encoded if that differs."""
    subresources = sorted((name, value) for name, value in _query_items(raw_query) if name in SUBRESOURCES)
    suffix = ""
    if subresources:
        suffix = "?" + "&".join(name if value is None else f"{name}={value}" for name, value in subresources)
    prefix = f"/{vhost_bucket}" if vhost_bucket else ""
    paths = [raw_path]
    strict = quote(unquote(raw_path), safe="/-_.~")
    if strict != raw_path:
        paths.append(strict)
    if not vhost_bucket and raw_path.count("/") == 1 and len(raw_path) > 1:
        paths.append(raw_path + "/")  # botocore signs a path-style bucket as "/bucket/"
    return [prefix + path + suffix for path in paths]


def _query_items(raw_query: str) -> list[tuple[str, str | None]]:
    # A sub-resource without "=" (``?uploads``) is signed without one.
    items = []
    for item in raw_query.split("&"):
        if item:
            name, eq, value = item.partition("=")
            items.append((unquote(name), unquote(value) if eq else None))
    return items


def _string_to_sign(parts: RequestParts, date_slot: str, resource: str) -> str:
    headers = parts.headers
    return "\n".join([parts.method, headers.get("content-md5", "").strip(),  # type: ignore[attr-defined]
                      headers.get("content-type", "").strip(),  # type: ignore[attr-defined]
                      date_slot]) + "\n" + canonical_amz_headers(headers) + resource


def _verify(parts: RequestParts, lookup: KeyLookup, access_key: str, signature: str,
            date_slots: list[str]) -> AuthResult:
    found = lookup(access_key)
    if found is None:
        raise InvalidAccessKeyId(AWSAccessKeyId=access_key)
    user, secret = found
    attempts = []
    for resource in canonical_resource(parts.raw_path, parts.raw_query, parts.vhost_bucket):
        for slot in date_slots:
            string_to_sign = _string_to_sign(parts, slot, resource)
            if hmac.compare_digest(sign(secret, string_to_sign), signature):
                return AuthResult(user, access_key, UNSIGNED)
            attempts.append(string_to_sign)
    raise SignatureDoesNotMatch(AWSAccessKeyId=access_key, StringToSign=attempts[0],
                                SignatureProvided=signature, StringToSignBytes=to_bytes_hex(attempts[0]))


def _parse_http_date(text: str) -> float:
    try:
        return email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError):
        pass
    try:  # some clients put an ISO 8601 basic timestamp in x-amz-date even with SigV2
        return _dt.datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=_dt.timezone.utc).timestamp()
    except ValueError:
        raise AccessDenied("AWS authentication requires a valid Date or x-amz-date header") from None


def authenticate_header(parts: RequestParts, authorization: str, lookup: KeyLookup, now: float) -> AuthResult:
    """``Authorization: AWS AccessKeyId:Signature``."""
    credentials = authorization.strip()[len("AWS "):].strip()
    access_key, sep, signature = credentials.rpartition(":")
    if not sep or not access_key or not signature:
        raise InvalidArgument("AWS authorization header is invalid.  Expected AwsAccessKeyId:signature",
                              ArgumentName="Authorization", ArgumentValue=authorization)
    headers = parts.headers
    amz_date = headers.get("x-amz-date")  # type: ignore[attr-defined]
    date = headers.get("date")  # type: ignore[attr-defined]
    if not amz_date and not date:
        raise AccessDenied("AWS authentication requires a valid Date or x-amz-date header")
    check_skew(_parse_http_date(amz_date or date), now)
    # With x-amz-date the Date slot is empty (it is signed among the x-amz-* headers); a few
    # clients still put the Date header there, so that is tried second.
    slots = [""] + ([date.strip()] if date else []) if amz_date else [date.strip()]
    return _verify(parts, lookup, access_key, signature, slots)


def authenticate_query(parts: RequestParts, query: dict[str, str], lookup: KeyLookup, now: float) -> AuthResult:
    """Query-string authentication: ``AWSAccessKeyId``, ``Expires`` (epoch seconds), ``Signature``."""
    expires_text = query.get("Expires", "")
    try:
        expires = int(expires_text)
    except ValueError:
        raise AccessDenied("Query-string authentication requires the Signature, Expires and "
                           "AWSAccessKeyId parameters") from None
    if now > expires:
        raise AccessDenied("Request has expired", Expires=_iso(expires), ServerTime=_iso(now))
    # The Signature parameter is excluded from the signed resource as it is not a sub-resource.
    return _verify(parts, lookup, query["AWSAccessKeyId"], query["Signature"], [expires_text])


def is_presigned(raw_query: str) -> bool:
    """Whether a query string carries SigV2 query authentication."""
    names = {name for name, _ in parse_query(raw_query)}
    return {"AWSAccessKeyId", "Signature"} <= names


def _iso(moment: float) -> str:
    return _dt.datetime.fromtimestamp(moment, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = ["authenticate_header", "authenticate_query", "canonical_resource", "is_presigned", "sign",
           "MAX_SKEW_SECONDS"]
