"""api_sig (spec §4): the published vectors, our derived ones, and a negative beside each."""

import pytest

from api.signing import md5

KEY = "6fa87ba500002712bd4eed6020f3bd72"
SECRET = "e9a599f0cf6ce193"

# (params, method, expected md5, provenance)
VECTORS = [
    ({"api_key": KEY, "doc_id": "1234", "keywords": "easy"}, "doc.tags.add",
     "a269b218feb341ef03bc093a0f2c8078", "ipernity encoding page, vector 1"),
    ({"api_key": KEY, "perm_network": "read"}, None,
     "da183021cd39461108770b822fcd9398", "ipernity encoding page, vector 2 (authorization link)"),
    ({"api_key": KEY}, "test.hello", "9abc55c5c7babee97d3067010fbaa0ca", "derived, spec §4.1"),
    ({"api_key": KEY}, "auth.getFrob", "302693cca51f35c48d656cb3338a994a", "derived, spec §4.1"),
    ({"api_key": KEY, "frob": "454-712bd4eed6"}, "auth.getToken",
     "696e5a08831e84d8ef079c7e9c360f3e", "derived, spec §4.1"),
    ({"api_key": KEY, "auth_token": "12345-a0b1c2d3e4f5", "is_public": "0",
      "title": "Café au lait"}, "upload.file",
     "c8115d55611a88d960b0ea8738aa4bfd", "derived, spec §4.1 (UTF-8; the file part is never a "
                                         "parameter)"),
    ({"api_key": KEY, "frob": "454-712bd4eed6", "perm_doc": "write"}, None,
     "6144235820d8cf15e11598b339682f5b", "derived, spec §4.1 (desktop authorization link)"),
]


@pytest.mark.parametrize("params, method, expected, source", VECTORS,
                         ids=[v[3] for v in VECTORS])
def test_vector(params, method, expected, source):
    assert md5.signature(params, method, SECRET) == expected
    assert md5.verify(params, method, SECRET, expected)
    assert md5.verify(params, method, SECRET, expected.upper())


def test_base_string_of_vector_1():
    assert md5.signature_base_string({"api_key": KEY, "doc_id": "1234", "keywords": "easy"},
                                     "doc.tags.add", SECRET) == (
        "api_key6fa87ba500002712bd4eed6020f3bd72doc_id1234keywordseasydoc.tags.adde9a599f0cf6ce193")


def test_a_text_parameter_named_file_is_signed():
    """ipernity-api 0.13 sends and signs ``file=<local path>`` beside the file part (issue 7)."""
    params = {**VECTORS[5][0], "file": "/home/me/photo.jpg"}
    assert md5.signature(params, "upload.file", SECRET) != VECTORS[5][2]
    assert "file/home/me/photo.jpg" in md5.signature_base_string(params, "upload.file", SECRET)


def test_api_sig_itself_is_not_signed():
    params = {"api_key": KEY, "doc_id": "1234", "keywords": "easy", "api_sig": "whatever"}
    assert md5.signature(params, "doc.tags.add", SECRET) == VECTORS[0][2]


@pytest.mark.parametrize("change", [
    pytest.param(lambda p: p, id="wrong secret"),
    pytest.param(lambda p: {**p, "doc_id": "1235"}, id="value changed"),
    pytest.param(lambda p: {**p, "extra": "1"}, id="parameter added"),
    pytest.param(lambda p: {k: v for k, v in p.items() if k != "keywords"}, id="parameter removed"),
])
def test_negative(change):
    params = {"api_key": KEY, "doc_id": "1234", "keywords": "easy"}
    secret = "0" * 16 if change(params) == params else SECRET
    assert not md5.verify(change(params), "doc.tags.add", secret, VECTORS[0][2])


def test_wrong_method_name_fails():
    params = {"api_key": KEY, "doc_id": "1234", "keywords": "easy"}
    assert not md5.verify(params, "doc.tags.remove", SECRET, VECTORS[0][2])


@pytest.mark.parametrize("sent", ["", "a269", "ä" * 32, "\udcff" * 32, "\x00" * 32,
                                  "a269b218feb341ef03bc093a0f2c807g"])
def test_tampered_or_non_ascii_signature_is_false_not_an_exception(sent):
    params = {"api_key": KEY, "doc_id": "1234", "keywords": "easy"}
    assert md5.verify(params, "doc.tags.add", SECRET, sent) is False
