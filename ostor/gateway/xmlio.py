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
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8")


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
    moment = _dt.datetime.fromtimestamp(ns / 1e9, _dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def http_time(ns: int) -> str:
    """An engine timestamp (ns) as an HTTP date (Last-Modified)."""
    return _http_time(ns // 1_000_000_000)


@functools.lru_cache(maxsize=4096)
def _http_time(seconds: int) -> str:
    # Cached: objects written in the same second share the string (strftime is slow on hot GETs).
    return _dt.datetime.fromtimestamp(seconds, _dt.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
