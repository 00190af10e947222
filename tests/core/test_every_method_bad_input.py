"""Bad input to every registered method gets an error envelope or an answer, never a 500.

One test walks the whole registry (datasette's habit): each method is called by a member holding a
delete-level token, with no parameters, with junk in every parameter, and with out-of-range numbers,
in every format; each answer must parse and carry a status. Then the cases issue 10 found: text
one character past a VARCHAR(255) and past SQLite's 50,000-byte LIKE pattern (each text parameter
alone, the ids pointing at the caller's own doc and album so the value reaches the database), and
form bodies whose media type is written in another case.
"""

from __future__ import annotations

import json

import pytest
from lxml import etree

from api.methods import build_registry
from api.models.docs import Album, Doc, UploadTicket
from tests.conftest import _multipart
from tests.upload.conftest import jpeg

JUNK = ["", "x", "-1", "0", "99999999999999999999", "1.5", "'; drop table docs; --", "é\u202e",
        "%", "1,2,3," * 30, "-999", "nan", "inf", "\x00", "a" * 5000, "2147483648", "-2147483649",
        "0x10", " 7 ", "１２", "²"]  # noqa: RUF001 (fullwidth digits, on purpose)
REGISTRY = build_registry()
LONG = ["a" * 256, "a" * 50_001, "é" * 25_001]  # VARCHAR(255) + 1; LIKE patterns over 50,000 bytes


@pytest.fixture
def member_token(member, token_for):
    return token_for(member, doc="delete", blog="delete", post="delete", network="delete",
                     profile="write")


def check(result) -> None:
    assert result.status_code == 200, (result.status_code, result.text[:300])


@pytest.mark.parametrize("spec", list(REGISTRY), ids=lambda spec: spec.name)
def test_junk_never_breaks_a_method(call, member_token, spec):
    for junk in JUNK:
        params = {p.name: junk for p in spec.params}
        result = call.raw(spec.name, "json", token=member_token, **params)
        check(result)
        assert result.json["api"]["status"] in ("ok", "error")


@pytest.mark.parametrize("fmt", ["xml", "php", "json"])
@pytest.mark.parametrize("spec", list(REGISTRY), ids=lambda spec: spec.name)
def test_no_parameters_in_every_format(call, member_token, spec, fmt):
    result = call.raw(spec.name, fmt, token=member_token)
    check(result)
    if fmt == "xml":
        assert etree.fromstring(result.content).get("status") in ("ok", "error")
    elif fmt == "json":
        assert json.loads(result.text)["api"]["status"] in ("ok", "error")
    else:
        assert result.text.startswith('a:')


@pytest.mark.parametrize("spec", [s for s in REGISTRY if s.params], ids=lambda spec: spec.name)
def test_anonymous_junk(call, spec):
    params = {p.name: "1" for p in spec.params}
    check(call.raw(spec.name, "json", sign=True, **params))


@pytest.fixture
def own_ids(member) -> dict[str, str]:
    """Parameters that name the caller's own things, so a long text gets as far as a write."""
    doc = Doc.create(owner=member, title="mine", secret="0" * 16, original_secret="1" * 16,
                     posted_at=1, modified_at=1)
    album = Album.create(owner=member, title="mine", created_at=1, modified_at=1)
    return {"doc_id": str(doc.id), "album_id": str(album.id), "user_id": str(member.id),
            "cover_id": str(doc.id), "doc_ids": str(doc.id)}


@pytest.mark.parametrize("spec", [s for s in REGISTRY if any(p.convert is str for p in s.params)],
                         ids=lambda spec: spec.name)
def test_long_text_in_each_parameter(call, member_token, own_ids, spec):
    base = {p.name: own_ids[p.name] for p in spec.params if p.name in own_ids}
    for param in (p for p in spec.params if p.convert is str and p.name != "file"):
        for text in LONG:
            result = call.raw(spec.name, "json", token=member_token, **(base | {param.name: text}))
            check(result)
            assert result.json["api"]["status"] in ("ok", "error")


@pytest.mark.parametrize("content_type", ["Multipart/Form-Data", "MULTIPART/FORM-DATA",
                                          "APPLICATION/X-WWW-FORM-URLENCODED",
                                          "Application/X-Www-Form-Urlencoded"])
@pytest.mark.parametrize("spec", list(REGISTRY), ids=lambda spec: spec.name)
def test_form_media_types_in_any_case(client, api_key, spec, content_type):
    params = {"api_key": api_key.key} | {p.name: "1" for p in spec.params if p.name != "file"}
    if content_type.lower().startswith("multipart"):
        media_type, body = _multipart(params, {})
        content_type += media_type[len("multipart/form-data"):]
    else:
        body = "&".join(f"{name}={value}" for name, value in params.items()).encode()
    result = client.simulate_post(f"/api/{spec.name}/xml", body=body,
                                  headers={"Content-Type": content_type})
    check(result)
    answer = etree.fromstring(result.content)
    assert answer.get("status") in ("ok", "error")
    assert answer.get("code") not in ("100", "140")  # the body was read: its key was found


@pytest.mark.parametrize("method", ["upload.file", "upload.replace"])
def test_junk_with_a_file(call, ctx, member_token, method):
    spec = REGISTRY.get(method)
    photo = {"file": ("x.jpg", jpeg())}
    for junk in JUNK:
        params = {p.name: junk for p in spec.params if p.name != "file"}
        check(call.raw(method, "json", token=member_token, files=photo, **params))
    if method == "upload.file":
        assert UploadTicket.select().count() > 0  # some junk is acceptable ("", " 7 ")
    ctx.uploads.process_pending()  # whatever was accepted processes without a crash
    assert UploadTicket.select().where(UploadTicket.state.not_in(["done", "failed"])).count() == 0


@pytest.mark.parametrize("filename", ["a\x00b.jpg", "\x00"])
def test_a_nul_in_the_file_name(call, member_token, filename):
    """A 500 on PostgreSQL, which cannot store NUL: now 140 like a NUL anywhere else."""
    result = call.raw("upload.file", "json", token=member_token, files={"file": (filename, jpeg())})
    check(result)
    assert result.json["api"]["code"] == "140"
