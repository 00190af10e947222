"""doc.notes.*: boxes on photos, who may add, edit and delete them."""

from __future__ import annotations

from api.models.docs import Note
from tests.docs.shapes import compare

BOX = {"x": 10, "y": 12, "w": 22, "h": 33}


# Live clients read the text as ``content`` and a named member's id and name (protocol-choices.md).
LIVE = {"note@content", "note@member_id", "note@membername"}


def test_shapes_match_the_spec(call, token_for, owner, member, make_doc):
    doc = make_doc(owner)
    token = token_for(owner, doc="write")
    added = call.raw("doc.notes.add", "xml", token=token, doc_id=doc.id, content="Your note",
                     member_id=member.id, **BOX).content
    compare("doc.notes.add", added, added=LIVE)
    note_id = Note.get().id
    compare("doc.notes.edit", call.raw("doc.notes.edit", "xml", token=token, note_id=note_id,
                                       content="Changed", **BOX).content, added=LIVE)
    assert call("doc.notes.delete", token=token, note_id=note_id) == {"api": {"status": "ok"}}
    assert Note.select().count() == 0


def test_add_edit_values(as_user, owner, member, make_doc):
    doc = make_doc(owner)
    got = as_user(owner, "doc.notes.add", doc_id=doc.id, content="Hi", member_id="member",
                  **BOX)["note"]
    assert got == {"note_id": got["note_id"], "user_id": str(owner.id),
                   "member_id": str(member.id), "membername": "A Member",
                   "posted_at": "1800000000", "x": "10", "y": "12", "w": "22", "h": "33",
                   "content": "Hi", "_value": "Hi"}
    edited = as_user(owner, "doc.notes.edit", note_id=got["note_id"], content="Ho", x=1, y=2,
                     w=3, h=4)["note"]
    assert (edited["_value"], edited["x"], edited["h"]) == ("Ho", "1", "4")
    # python-ipernity-api reads note.content from the edit's answer.
    assert (edited["content"], edited["membername"]) == ("Ho", "A Member")
    plain = as_user(owner, "doc.notes.add", doc_id=doc.id, content="No one", **BOX)["note"]
    assert plain["content"] == "No one" and "member_id" not in plain
    assert "membername" not in plain
    assert Note.get_by_id(got["note_id"]).content == "Ho"


def test_preview_saves_nothing(as_user, owner, make_doc):
    doc = make_doc(owner)
    got = as_user(owner, "doc.notes.add", doc_id=doc.id, content="Hi", preview=1, **BOX)
    assert got["note"]["_value"] == "Hi" and Note.select().count() == 0


def test_who_may(as_user, owner, member, stranger, relate, make_doc):
    doc = make_doc(owner, perm_comment=2)
    relate(owner, member, friend=True)
    assert as_user(stranger, "doc.notes.add", doc_id=doc.id, content="x", **BOX)["api"][
        "code"] == "3"
    note_id = as_user(member, "doc.notes.add", doc_id=doc.id, content="x", **BOX)["note"][
        "note_id"]
    assert as_user(stranger, "doc.notes.edit", note_id=note_id, content="y", **BOX)["api"][
        "code"] == "3"
    assert as_user(stranger, "doc.notes.delete", note_id=note_id)["api"]["code"] == "3"
    assert as_user(member, "doc.notes.edit", note_id=note_id, content="y", **BOX)["note"]
    assert as_user(owner, "doc.notes.delete", note_id=note_id) == {"api": {"status": "ok"}}


def test_errors(as_user, owner, stranger, make_doc):
    doc = make_doc(owner)
    video = make_doc(owner, media="video")
    private = make_doc(owner, is_public=False)
    add = "doc.notes.add"
    assert as_user(owner, add, doc_id=doc.id, content="x", x=1, y=1, w=1)["api"]["code"] == "2"
    assert as_user(owner, add, doc_id=doc.id, content="x", x=1, y=1, w=0, h=1)["api"][
        "code"] == "2"
    assert as_user(owner, add, doc_id=doc.id, content="x", x="a", y=1, w=1, h=1)["api"][
        "code"] == "2"
    assert as_user(owner, add, doc_id=doc.id, content="x", member_id="ghost", **BOX)["api"][
        "code"] == "2"
    assert as_user(owner, add, doc_id=999, content="x", **BOX)["api"]["code"] == "1"
    assert as_user(owner, add, doc_id=video.id, content="x", **BOX)["api"]["code"] == "4"
    assert as_user(stranger, add, doc_id=private.id, content="x", **BOX)["api"]["code"] == "1"
    hidden = as_user(owner, add, doc_id=private.id, content="x", **BOX)["note"]["note_id"]
    assert as_user(stranger, "doc.notes.delete", note_id=hidden)["api"]["code"] == "1"
    assert as_user(owner, "doc.notes.delete", note_id=999)["api"]["code"] == "1"
    assert as_user(owner, "doc.notes.edit", note_id=999, content="x", **BOX)["api"]["code"] == "1"
