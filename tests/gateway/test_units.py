"""Pure-function checks of the gateway: target parsing, routing table, hardened XML, SigV4 pieces."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from ostor.common.errors import MalformedXML, MethodNotAllowed, NotImplemented_
from ostor.gateway import router
from ostor.gateway.app import parse_target
from ostor.gateway.auth.sigv4 import canonical_query, parse_query
from ostor.gateway.xmlio import parse


def test_parse_target_path_style():
    assert parse_target("/", "h", None) == (None, None)
    assert parse_target("/bkt", "h", None) == ("bkt", None)
    assert parse_target("/bkt/", "h", None) == ("bkt", None)
    assert parse_target("/bkt/a+b%20c%2Fd?x=1", "h", None) == ("bkt", "a+b c/d")
    assert parse_target("/bkt//x", "h", None) == ("bkt", "/x")


def test_parse_target_virtual_host():
    assert parse_target("/k%20ey", "bkt.s3.local:9000", "s3.local") == ("bkt", "k ey")
    assert parse_target("/", "bkt.s3.local", "s3.local") == ("bkt", None)
    assert parse_target("/bkt/k", "s3.local:9000", "s3.local") == ("bkt", "k")


def test_routing_table():
    headers = CIMultiDict()
    assert router.resolve("GET", router.Level.BUCKET, {}, headers) is router.LIST_OBJECTS
    assert router.resolve("GET", router.Level.BUCKET, {"list-type": "2"}, headers) is router.LIST_OBJECTS_V2
    assert router.resolve("PUT", router.Level.OBJECT, {"partNumber": "1", "uploadId": "u"}, headers) \
        is router.UPLOAD_PART
    copy = CIMultiDict({"x-amz-copy-source": "/a/b"})
    assert router.resolve("PUT", router.Level.OBJECT, {}, copy) is router.COPY_OBJECT
    with pytest.raises(NotImplemented_):
        router.resolve("GET", router.Level.BUCKET, {"acl": ""}, headers)
    with pytest.raises(MethodNotAllowed):
        router.resolve("PATCH", router.Level.OBJECT, {}, headers)


def test_xml_rejects_entities():
    with pytest.raises(MalformedXML):
        parse(b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x "y">]><Delete>&x;</Delete>')
    with pytest.raises(MalformedXML):
        parse(b"<Delete><Object>")
    root = parse(b'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>k</Key></Object></Delete>')
    assert root.tag == "Delete" and root.find("Object/Key").text == "k"


def test_canonical_query_encoding():
    pairs = parse_query("prefix=a%20b+c&list-type=2&marker=")
    assert pairs == [("prefix", "a b+c"), ("list-type", "2"), ("marker", "")]
    assert canonical_query(pairs) == "list-type=2&marker=&prefix=a%20b%2Bc"
