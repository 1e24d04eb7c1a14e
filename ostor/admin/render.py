"""The output shapes of ostor-s3-admin, copied from the seed ("Managing S3 Users", "Managing Buckets").

Plain text lines and one-line XML documents exactly as the seed prints them;
rich is used only where the seed prescribes no shape (the usage table).
"""

from __future__ import annotations

import datetime
from typing import Any
from xml.sax.saxutils import escape

XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>'
#: The seed's query-users XML names an owner of each key set; no account owns users here.
KEYS_OWNER = "0000000000000000"


def _el(name: str, value: Any) -> str:
    return f"<{name}>{escape(str(value))}</{name}>"


def iso_time(ns: int) -> str:
    """``2015-08-18T09:32:35.000Z`` (UTC, milliseconds) as the seed prints dates."""
    moment = datetime.datetime.fromtimestamp(ns / 1e9, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# -- users ---------------------------------------------------------------------------------

def created_user(user: dict[str, Any]) -> str:
    """create-user: the new user's ID, e-mail and first key pair."""
    key = user["keys"][0]
    return "\n".join([f"UserEmail:{user['email']}", f"UserId:{user['id']}",
                      f"KeyPair[0]:S3AccessKeyId:{key['id']}",
                      f"KeyPair[0]:S3SecretAccessKey:{key['secret']}",
                      f"Flags:{'disabled' if user['disabled'] else 'none'}"])


def users_table(users: list[dict[str, Any]], show_secrets: bool) -> str:
    """query-users: one row per key pair, user ID and e-mail on the first; '-' without keys."""
    lines = []
    for user in users:
        keys = user["keys"] or [{"id": "-", "secret": "-"}]
        for index, key in enumerate(keys):
            secret = key["secret"] if show_secrets or key["id"] == "-" else "***"
            first = index == 0
            line = f"{user['id'] if first else '':<16}  {key['id']:>20}  {secret:>32}"
            lines.append(line + (f"  {user['email'] or user['name']}" if first else ""))
    return "\n".join(lines)


def users_xml(users: list[dict[str, Any]], show_secrets: bool) -> str:
    """query-users -X: the seed's QueryUsersResult document (secrets only with -a)."""
    parts = [XML_HEAD, "<QueryUsersResult><Users>"]
    for user in users:
        parts.append(f"<User>{_el('Id', user['id'])}{_el('Email', user['email'] or user['name'])}<Keys>")
        parts.append(_el("OwnerId", KEYS_OWNER))
        for key in user["keys"]:
            parts.append(f"<KeyPair>{_el('S3AccessKeyId', key['id'])}")
            if show_secrets:
                parts.append(_el("S3SecretAccessKey", key["secret"]))
            parts.append("</KeyPair>")
        parts.append("</Keys>")
        if user["disabled"]:
            parts.append(_el("Flags", "disabled"))
        parts.append("</User>")
    parts.append("</Users></QueryUsersResult>")
    return "".join(parts)


def user_info(user: dict[str, Any]) -> str:
    """query-user-info: the user line and each key pair over two lines."""
    lines = [f"Query user: user id={user['id']}, user email={user['email'] or user['name']}"]
    for index, key in enumerate(user["keys"]):
        lines.append(f"Key pair[{index}]: access key id={key['id']},")
        lines.append(f"secret access key={key['secret']}")
    if user["disabled"]:
        lines.append("Flags: disabled")
    return "\n".join(lines)


def generated_key(doc: dict[str, Any]) -> str:
    """gen-access-key."""
    return (f"Generate access key: user id={doc['id']}, access key id={doc['key']},\n"
            f"secret access key={doc['secret']}")


def revoked_key(doc: dict[str, Any]) -> str:
    """revoke-access-key."""
    return f"Revoke access key: user id={doc['id']}, access key id={doc['key']}"


# -- buckets -------------------------------------------------------------------------------

def bucket_row(bucket: dict[str, Any]) -> str:
    """One list-all-buckets row: name, owner, creation date, versioning, total size."""
    return (f"{bucket['name']:<9}  {bucket['owner']}  {iso_time(bucket['created_ns'])}"
            f"{bucket['versioning']:>12}{bucket['size']:>22}")


def buckets_table(buckets: list[dict[str, Any]]) -> str:
    """list-all-buckets."""
    return "\n".join([f"Total {len(buckets)} buckets", *(bucket_row(b) for b in buckets)])


def buckets_xml(buckets: list[dict[str, Any]]) -> str:
    """list-all-buckets -X: the seed's ListBucketsResult document."""
    parts = [XML_HEAD, "<ListBucketsResult><Buckets>"]
    for b in buckets:
        parts.append("<Bucket>" + _el("Name", b["name"]) + _el("Owner", b["owner"])
                     + _el("CreationDate", iso_time(b["created_ns"])) + _el("Versioning", b["versioning"])
                     + _el("Notary", "off") + _el("TotalSize", b["size"]) + "</Bucket>")
    parts.append("</Buckets></ListBucketsResult>")
    return "".join(parts)


def bucket_info(bucket: dict[str, Any]) -> str:
    """query-bucket-info: the bucket line, a blank line, then the ACL."""
    line = (f"{bucket['name']}  {bucket['owner']}  {iso_time(bucket['created_ns'])}  "
            f"{bucket['versioning']:<12}{bucket['size']}")
    return "\n".join([line, "", *(f"ACL: {grant}" for grant in bucket["acl"])])


def changed_owner(doc: dict[str, Any]) -> str:
    """change-bucket-owner."""
    return f"Changed owner of the bucket {doc['bucket']}. New owner {doc['owner']}"


# -- statistics ----------------------------------------------------------------------------

USAGE_COLUMNS = ("User", "Bucket", "Operation", "Requests", "BytesIn", "BytesOut")


def usage_xml(rows: list[list[Any]]) -> str:
    """usage -X: one <Usage> element per (user, bucket, operation)."""
    parts = [XML_HEAD, "<UsageResult>"]
    for row in rows:
        parts.append("<Usage>" + "".join(_el(name, value) for name, value in zip(USAGE_COLUMNS, row))
                     + "</Usage>")
    parts.append("</UsageResult>")
    return "".join(parts)


def usage_table(rows: list[list[Any]]) -> Any:
    """usage: a rich table with a total line."""
    from rich.table import Table

    table = Table(box=None, show_edge=False, pad_edge=False)
    for index, name in enumerate(USAGE_COLUMNS):
        table.add_column(name, justify="right" if index >= 3 else "left", no_wrap=True)
    for user, bucket, op, requests, bytes_in, bytes_out in rows:
        table.add_row(user or "-", bucket or "-", op, str(requests), str(bytes_in), str(bytes_out))
    table.add_row("Total", "", "", str(sum(r[3] for r in rows)), str(sum(r[4] for r in rows)),
                  str(sum(r[5] for r in rows)))
    return table
