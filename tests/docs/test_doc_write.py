"""doc.set, setPerms/getPerms, setLicense, setGeo, setSafety, delete, checkMD5, getVisitors."""

from __future__ import annotations

import io

import pytest

from api.models.docs import Doc, DocVisit, Tag, Thumb
from keys import store
from tests.docs.shapes import compare


@pytest.fixture
def write(token_for, owner):
    return token_for(owner, doc="delete")


def test_set_shape_and_errors(call, owner, member, make_doc, write, token_for):
    doc = make_doc(owner, is_public=False)
    raw = call.raw("doc.set", "xml", token=write, doc_id=doc.id, title="A new title",
                   description="Well...")
    compare("doc.set", raw.content)
    got = call("doc.set", token=write, doc_id=doc.id, title="Again")["doc"]
    assert got == {"doc_id": str(doc.id), "title": "Again", "share": "0",
                   "description": "Well..."}
    assert call("doc.set", token=write, doc_id=doc.id, title="x" * 256)["api"]["code"] == "2"
    theirs = token_for(member, doc="write")
    assert call("doc.set", token=theirs, doc_id=doc.id, title="mine")["api"]["code"] == "1"
    assert call("doc.set", token=token_for(owner, doc="read"), doc_id=doc.id,
                title="t")["api"]["code"] == "110"
    assert call("doc.set", doc_id=doc.id)["api"]["code"] == "106"


def test_set_and_get_perms(call, owner, make_doc, write):
    doc = make_doc(owner)
    assert call("doc.setPerms", token=write, doc_id=doc.id, share=3, perm_comment=0,
                perm_tag=4, perm_tagme=5) == {"api": {"status": "ok"}}
    # doc.get's names beside the example's: live clients read permissions.comment and can.fave.
    can_names = ("fave", "comment", "tag", "tagme", "zoom", "download", "print")
    compare("doc.getPerms", call.raw("doc.getPerms", "xml", token=write, doc_id=doc.id).content,
            added={"permissions@comment", "permissions@tag", "permissions@tagme", "can",
                   *(f"can@{name}" for name in can_names)})
    got = call("doc.getPerms", token=write, doc_id=doc.id)
    assert got["visibility"] == {"ispublic": "0", "isfriend": "1", "isfamily": "1"}
    assert got["permissions"] == {"permcomment": "0", "permtag": "4", "permtagme": "5",
                                  "comment": "0", "tag": "4", "tagme": "5"}
    assert got["can"] == {"fave": "0", "comment": "1", "tag": "1", "tagme": "1", "zoom": "1",
                          "download": "1", "print": "0"}
    assert got["usage"] == {f"can{name}": value for name, value in got["can"].items()}
    call("doc.setPerms", token=write, doc_id=doc.id, is_public=1)
    assert Doc.get_by_id(doc.id).share == 4
    for bad in ({"share": 7}, {"perm_tag": 6}, {"is_public": 2}, {}):
        assert call("doc.setPerms", token=write, doc_id=doc.id if bad else None,
                    **bad)["api"]["code"] == "2"
    assert call("doc.getPerms", token=write, doc_id=doc.id + 1)["api"]["code"] == "1"


@pytest.mark.parametrize(("method", "good", "bad", "field", "stored"), [
    ("doc.setLicense", {"license": 11}, {"license": 2}, "license", 11),
    ("doc.setSafety", {"safety": 3}, {"safety": 4}, "safety", 3),
    ("doc.setGeo", {"lat": 48.5, "lng": 2.25}, {"lat": 48.5}, "lat", 48.5),
])
def test_setters(method, good, bad, field, stored, call, owner, make_doc, write):
    doc = make_doc(owner)
    assert call(method, token=write, doc_id=doc.id, **good) == {"api": {"status": "ok"}}
    assert getattr(Doc.get_by_id(doc.id), field) == stored
    assert call(method, token=write, doc_id=doc.id, **bad)["api"]["code"] == "2"
    assert call(method, token=write, doc_id=doc.id + 1, **good)["api"]["code"] == "1"


def test_set_geo_removes_with_minus_999(call, owner, make_doc, write):
    doc = make_doc(owner, lat=1.0, lng=2.0)
    call("doc.setGeo", token=write, doc_id=doc.id, lat=-999, lng=-999)
    assert (Doc.get_by_id(doc.id).lat, Doc.get_by_id(doc.id).lng) == (None, None)


class MemoryStorage:
    """The storage interface's delete, recorded."""

    def __init__(self) -> None:
        self.deleted: list[str] = []

    def delete(self, name: str) -> None:
        self.deleted.append(name)

    def open(self, name: str) -> io.BytesIO:
        return io.BytesIO()


def test_delete_removes_rows_and_files(call, ctx, owner, member, make_doc, write, token_for):
    storage = MemoryStorage()
    ctx.storage = storage
    doc = make_doc(owner)
    Tag.create(doc=doc, tag="a", norm="a")
    assert call("doc.delete", token=token_for(owner, doc="write"),
                doc_id=doc.id)["api"]["code"] == "110"
    assert call("doc.delete", token=token_for(member, doc="delete"),
                doc_id=doc.id)["api"]["code"] == "1"
    assert call("doc.delete", token=write, doc_id=doc.id) == {"api": {"status": "ok"}}
    assert not Doc.select().exists() and not Thumb.select().exists()
    assert not Tag.select().exists()
    assert sorted(storage.deleted) == sorted(
        [f"00/01/{doc.id}.{doc.secret}.{label}.jpg" for label in ("75x", "100", "240", "500")]
        + [f"00/01/{doc.id}.{doc.original_secret}.original.jpg"])
    assert call("doc.delete", token=write, doc_id=doc.id)["api"]["code"] == "1"


def test_check_md5(call, owner, member, make_doc, write, token_for):
    doc = make_doc(owner, md5="235e2a6828db582a8278cd2bc645790b")
    make_doc(member, md5="0945c9c3e9ad7f32eeaaa0096934e281")  # someone else's stream
    raw = call.raw("doc.checkMD5", "xml", token=write,
                   md5="235E2A6828DB582A8278CD2BC645790B,0945c9c3e9ad7f32eeaaa0096934e281")
    compare("doc.checkMD5", raw.content)
    got = call("doc.checkMD5", token=write,
               md5="235e2a6828db582a8278cd2bc645790b,0945c9c3e9ad7f32eeaaa0096934e281")["docs"]
    # Only found docs are listed, so every entry can go to doc.get (PyIpernity's tests do).
    assert got == {"count": "2", "found": "1", "doc": [
        {"md5": doc.md5, "doc_id": str(doc.id), "found": "1"}]}
    for entry in got["doc"]:
        assert call("doc.get", token=write, doc_id=entry["doc_id"])["doc"]["owner"][
            "user_id"] == str(owner.id)
    none = call("doc.checkMD5", token=write, md5="0945c9c3e9ad7f32eeaaa0096934e281")["docs"]
    assert (none["count"], none["found"], none.get("doc") or []) == ("1", "0", [])
    many = ",".join(f"{i:032x}" for i in range(21))
    assert call("doc.checkMD5", token=write, md5=many)["api"]["code"] == "1"
    assert call("doc.checkMD5", token=write)["api"]["code"] == "1"


def test_get_visitors(call, ctx, owner, member, make_doc, write, token_for, count_queries):
    doc = make_doc(owner)
    for i in range(12):
        visitor = store.add_user(f"visitor{i}", "password")
        DocVisit.create(doc=doc, visitor=visitor, visited_at=1000 + i, first_visit_at=900)
    compare("doc.getVisitors", call.raw("doc.getVisitors", "xml", token=write,
                                        doc_id=doc.id).content,
            absent={"visits/anonymous", "visits/anonymous@visited_at",
                    "visits/anonymous@visits"})
    got = call("doc.getVisitors", token=write, doc_id=doc.id, page=2)["visits"]
    assert {k: got[k] for k in ("total", "page", "pages", "per_page", "count")} == {
        "total": "12", "page": "2", "pages": "2", "per_page": "10", "count": "2"}
    assert [v["username"] for v in got["visit"]] == ["visitor1", "visitor0"]
    with count_queries() as log:
        call("doc.getVisitors", token=write, doc_id=doc.id, per_page=12)
    assert len(log) <= 5
    assert call("doc.getVisitors", token=write, doc_id=doc.id,
                per_page=101)["visits"]["per_page"] == "100"  # lowered to the maximum
    assert call("doc.getVisitors", token=write, doc_id=doc.id,
                per_page=0)["api"]["code"] == "143"
    assert call("doc.getVisitors", token=token_for(member, doc="read"),
                doc_id=doc.id)["api"]["code"] == "1"
