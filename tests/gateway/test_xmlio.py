"""Response documents: the fast serialiser writes exactly what ElementTree writes."""

import datetime as dt
import xml.etree.ElementTree as ET

from hypothesis import given, settings
from hypothesis import strategies as st

from ostor.gateway.xmlio import document, element, iso_time, sub

_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
# XML 1.0 characters (others cannot be parsed back), markup characters and whitespace included.
_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")) | st.sampled_from("&<>\"'\r\n\t"),
                max_size=12)
_TAGS = st.sampled_from(["Key", "Size", "Contents", "ETag", "a", "b-c", "x.y"])


@st.composite
def trees(draw, depth=3):
    node = element(draw(_TAGS))
    text = draw(st.none() | _TEXT)
    if text is not None:
        node.text = text
    if depth:
        for child in draw(st.lists(trees(depth=depth - 1), max_size=4)):
            node.append(child)
    return node


@settings(max_examples=300, deadline=None)
@given(tree=trees(), attribute=st.none() | _TEXT, namespace=st.booleans())
def test_document_is_what_elementtree_writes(tree, attribute, namespace):
    if attribute is not None:
        tree.set("note", attribute)
    ours = document(tree, namespace)
    assert ours == _DECLARATION + ET.tostring(tree, encoding="utf-8")
    assert len(list(ET.fromstring(ours).iter())) == len(list(tree.iter()))  # well-formed


def test_trees_outside_the_fast_path_go_to_elementtree():
    root = element("Root")
    child = sub(root, "{urn:x}Child", "text")
    child.tail = "tail & more"
    assert document(root, namespace=False) == _DECLARATION + ET.tostring(root, encoding="utf-8")
    assert b"tail &amp; more" in document(root, namespace=False)


@given(ns=st.integers(0, 4_102_444_800 * 10**9))
def test_iso_time_truncates_to_milliseconds(ns):
    moment = dt.datetime.fromtimestamp(ns // 10**9, dt.timezone.utc)
    expected = moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 10**9 // 10**6:03d}Z"
    assert iso_time(ns) == expected
    assert iso_time(1_770_000_000_999_999_999) == "2026-02-02T02:40:00.999Z"


def test_attributes_elementtree_writes_itself():
    root = element("Root")
    root.set("{urn:x}lang", "en")
    sub(root, "Key", "k")
    assert document(root) == _DECLARATION + ET.tostring(root, encoding="utf-8")
