"""The result tree's mapping rules (spec §2.3) and the four renderings, with real decoders."""

import json
import subprocess

import pytest
from lxml import etree

from api.formats import FORMATS, Jsonp
from api.formats.php import serialize
from api.formats.tree import ListOf, Text, to_plain
from tests.conftest import require_program

# (tree, expected JSON structure): one row per rule of spec §2.3.
RULES = [
    ({"hello": Text("hello world!")}, {"hello": "hello world!"}),  # rule 2
    ({"doc": {"doc_id": 1234567, "is_pro": False, "lat": 48.5}},  # rule 1: strings
     {"doc": {"doc_id": "1234567", "is_pro": "0", "lat": "48.5"}}),
    ({"note": {"for": "params", "_value": "text"}}, {"note": {"for": "params", "_value": "text"}}),
    ({"tickets": {"count": 1, "ticket": [{"id": "7"}]}},  # rule 4: one item stays a list
     {"tickets": {"count": "1", "ticket": [{"id": "7"}]}}),
    ({"docs": {"total": 0, "doc": []}}, {"docs": {"total": "0", "doc": []}}),  # empty list: []
    ({"permissions": {}}, {"permissions": []}),  # rule 5: empty element is []
    ({"doc": {"description": Text(""), "owner": {"user_id": 1}, "skip": None}},
     {"doc": {"description": "", "owner": {"user_id": "1"}}}),
    ({"parameters": ListOf("param", [{"name": "echo", "_value": "help"}], text_key="value")},
     {"parameters": [{"name": "echo", "value": "help"}]}),
]


@pytest.mark.parametrize("tree, expected", RULES)
def test_mapping_rules(tree, expected):
    assert to_plain(tree) == expected


def test_json_envelopes():
    fmt = FORMATS["json"]
    assert json.loads(fmt.render({"hello": Text("hi")})) == {"api": {"status": "ok"},
                                                              "hello": "hi"}
    assert fmt.render_error(101, "API Key is invalid") == (
        b'{"api":{"status":"error","code":"101","message":"API Key is invalid"}}')


def test_xml_success_and_error_parse_with_lxml():
    fmt = FORMATS["xml"]
    body = fmt.render({"doc": {"doc_id": 1, "title": Text("Café"),
                               "thumbs": {"thumb": [{"label": "75x"}, {"label": "100"}]}}})
    assert body.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    root = etree.fromstring(body)
    assert root.tag == "api" and root.get("status") == "ok"
    assert root.find("doc").get("doc_id") == "1"
    assert root.findtext("doc/title") == "Café"
    assert [t.get("label") for t in root.findall("doc/thumbs/thumb")] == ["75x", "100"]
    error = etree.fromstring(fmt.render_error(1, "Document not found"))
    assert (error.get("status"), error.get("code"), error.get("message"), len(error)) == (
        "error", "1", "Document not found", 0)


def test_control_characters_are_dropped_everywhere():
    tree = {"echo": Text("a\x00b\x1fc\x0bd\ttab"), "x": {"v": "\x07bell"}}
    root = etree.fromstring(FORMATS["xml"].render(tree))
    assert root.findtext("echo") == "abcd\ttab"
    assert root.find("x").get("v") == "bell"
    assert json.loads(FORMATS["json"].render(tree))["echo"] == "abcd\ttab"


def test_php_serialize_counts_utf8_bytes_and_checks_bool_before_int():
    assert serialize("é") == 's:2:"é";'
    assert serialize(True) == "b:1;"
    assert serialize(3) == "i:3;"
    assert serialize([1]) == "a:1:{i:0;i:1;}"
    assert FORMATS["php"].render({"hello": Text("hello world!")}) == (
        b'a:2:{s:5:"hello";s:12:"hello world!";s:3:"api";a:1:{s:6:"status";s:2:"ok";}}')


PHP_DECODE = ('$v = unserialize(stream_get_contents(STDIN)); '
              'if ($v === false) { exit(3); } echo json_encode($v, JSON_UNESCAPED_UNICODE);')


def php_unserialize(body: bytes):
    """Decode with PHP's own unserialize (php-cli), returned through json_encode."""
    php = require_program("php")
    done = subprocess.run([php, "-r", PHP_DECODE], input=body, capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("tree", [
    {"hello": Text("hello world!")},
    {"echo": Text("Grüße, 東京, emoji 😀, quote \" and ;}")},
    {"doc": {"doc_id": 5, "tags": {"tag": [{"tag": "ünïcode"}]}, "empty": {}}},
])
def test_php_output_round_trips_through_php_unserialize(tree):
    fmt = FORMATS["php"]
    assert php_unserialize(fmt.render(tree)) == json.loads(FORMATS["json"].render(tree))


def test_php_error_round_trips():
    body = FORMATS["php"].render_error(105, "Signature is invalid")
    assert php_unserialize(body) == {"api": {"status": "error", "code": "105",
                                             "message": "Signature is invalid"}}


def test_jsonp_wraps_with_comment_prefix():
    fmt = Jsonp("my.cb_1$")
    assert fmt.content_type == "text/javascript; charset=utf-8"
    assert fmt.headers["X-Content-Type-Options"] == "nosniff"
    assert fmt.render({"hello": Text("hi")}) == (
        b'/**/my.cb_1$({"hello":"hi","api":{"status":"ok"}});')
