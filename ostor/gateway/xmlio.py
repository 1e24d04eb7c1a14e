"""S3 XML in and out: output built with xml.etree, input parsed with DTDs refused.

Request bodies are untrusted; a document with a DOCTYPE (and therefore any
entity declaration) is rejected before it reaches the parser, which rules out
entity expansion and external entity attacks.
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
import xml.etree.ElementTree as ET
from typing import Any

from ostor.common.errors import MalformedXML

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
_DOCTYPE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_NS_PREFIX = re.compile(r"^\{[^}]*\}")


def element(tag: str, text: Any = None, children: list[ET.Element] | None = None) -> ET.Element:
    """An element with optional text and children."""
    node = ET.Element(tag)
    if text is not None:
        node.text = str(text)
    for child in children or ():
        node.append(child)
    return node


def sub(parent: ET.Element, tag: str, text: Any = None) -> ET.Element:
    """Append a child element with optional text; returns the child."""
    node = ET.SubElement(parent, tag)
    if text is not None:
        node.text = str(text)
    return node


def document(root: ET.Element, namespace: bool = True) -> bytes:
    """Serialise ``root`` as an S3 response document (UTF-8, XML declaration)."""
    if namespace:
        root.set("xmlns", S3_NS)
    out: list[str] = []
    try:
        _serialize(root, out)
        body = "".join(out).encode()
    except _Unusual:
        body = ET.tostring(root, encoding="utf-8")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


class _Unusual(Exception):
    """A tree outside what :func:`_serialize` writes (ElementTree's serialiser takes it)."""


def _escape(text: str) -> str:
    # As ElementTree escapes text; most text needs nothing, and three tests are cheaper than translate().
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return text


_ATTRIBUTE_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
                                     "\r": "&#13;", "\n": "&#10;", "\t": "&#09;"})


def _serialize(node: ET.Element, out: list[str]) -> None:
    # What ET.tostring writes for the trees responses are made of (plain tags, str text and
    # attributes, no tails), several times faster: its pure-Python serialiser took half of a
    # 1000-key listing's time. Anything else is left to ElementTree (_Unusual).
    tag, text = node.tag, node.text
    if type(tag) is not str or "{" in tag or node.tail:
        raise _Unusual
    tag_open = tag
    for name, value in node.items():
        if type(name) is not str or type(value) is not str or "{" in name:
            raise _Unusual
        tag_open += f' {name}="{value.translate(_ATTRIBUTE_ENTITIES)}"'
    if text is not None and type(text) is not str:
        raise _Unusual
    if len(node):
        out.append(f"<{tag_open}>{_escape(text)}" if text else f"<{tag_open}>")
        for child in node:
            _serialize(child, out)
        out.append(f"</{tag}>")
    elif text:
        out.append(f"<{tag_open}>{_escape(text)}</{tag}>")
    else:
        out.append(f"<{tag_open} />")


def parse(body: bytes) -> ET.Element:
    """Parse an untrusted request document, stripping namespaces from tags (MalformedXML)."""
    if _DOCTYPE.search(body):
        raise MalformedXML("DTDs and entity declarations are not allowed.")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise MalformedXML() from exc
    for node in root.iter():
        if isinstance(node.tag, str):
            node.tag = _NS_PREFIX.sub("", node.tag)
    return root


def child_text(node: ET.Element, tag: str, default: str | None = None) -> str | None:
    """Text of the first direct child named ``tag`` (namespaces already stripped)."""
    found = node.find(tag)
    if found is None:
        return default
    return found.text or ""


def iso_time(ns: int) -> str:
    """An engine timestamp (ns) as S3 XML writes it: 2006-02-03T16:45:09.000Z."""
    seconds, rest = divmod(ns, 1_000_000_000)
    return f"{_iso_seconds(seconds)}.{rest // 1_000_000:03d}Z"


@functools.lru_cache(maxsize=4096)
def _iso_seconds(seconds: int) -> str:
    # Cached: a listing's objects were mostly written in a few seconds, and strftime is slow.
    return _dt.datetime.fromtimestamp(seconds, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def http_time(ns: int) -> str:
    """An engine timestamp (ns) as an HTTP date (Last-Modified)."""
    return _http_time(ns // 1_000_000_000)


@functools.lru_cache(maxsize=4096)
def _http_time(seconds: int) -> str:
    # Cached: objects written in the same second share the string (strftime is slow on hot GETs).
    return _dt.datetime.fromtimestamp(seconds, _dt.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
