"""The first calls a newcomer makes: test.hello and test.echo in each format."""

from lxml import etree


def test_hello_json(call):
    assert call("test.hello") == {"api": {"status": "ok"}, "hello": "hello world!"}


def test_echo_xml(call):
    result = call.raw("test.echo", "xml", echo="Hallo Echo!")
    root = etree.fromstring(result.content)
    assert root.tag == "api" and root.get("status") == "ok"
    assert root.findtext("echo") == "Hallo Echo!"


def test_echo_empty_is_code_1(call):
    assert call("test.echo", echo="")["api"] == {"status": "error", "code": "1",
                                                  "message": "Nothing was sent"}


def test_token_call_is_signed_and_resolved(call, member, token_for):
    token = token_for(member, doc="read")
    assert call("test.hello", token=token)["hello"] == "hello world!"
    assert call("test.hello", token=token + "x")["api"]["code"] == "107"
    assert call("test.hello", token=token, sign=False)["api"]["code"] == "104"
