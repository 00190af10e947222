"""doc.get, doc.getMedias, doc.getExif, doc.getContext: shapes, visibility, visits."""

from __future__ import annotations

import json

import pytest

from api.models.docs import Album, AlbumDoc, Comment, DocVisit, Note, Relation, Tag
from keys import store
from tests.docs.shapes import compare


@pytest.fixture
def stranger(ctx):
    return store.add_user("stranger", "stranger-password")


def test_get_shape_matches_spec(call, owner, member, make_doc, token_for):
    doc = make_doc(owner, lat=48.85, lng=2.35, description="It's a car", license=3)
    Tag.create(doc=doc, tag="Car", norm="car", added_by=owner)
    Tag.create(doc=doc, type="member", member=member, added_by=owner)
    Note.create(doc=doc, author=member, x=1, y=2, w=3, h=4, content="Nice")
    Note.create(doc=doc, author=member, member=owner, x=5, y=6, w=7, h=8, content="Him")
    token = token_for(member, doc="read")
    xml = call.raw("doc.get", "xml", token=token, doc_id=doc.id,
                   extra="tags,notes,geo,md5").content
    # What live clients read beyond the example (docs/protocol-choices.md) is added on purpose.
    live = {"doc/owner@alias", "doc/owner@icon", "doc/owner@is_pro",
            "doc/dates@last_comment_at", "doc/dates@last_update_at", "doc/visibility@isfriends",
            "doc/you@last_visit_at", "doc/tags/tag@id", "doc/tags/tag@tag",
            "doc/notes/note@content", "doc/notes/note@member_id", "doc/notes/note@membername"}
    compare("doc.get", xml,
            added={"doc@md5", "doc/thumbs/thumb@ext", *live},
            absent={"doc/dates@replaced_at", "doc/geo@loc_id",
                    "doc/geo@location", "doc/original@filename", "doc/medias",
                    "doc/medias/media", *(f"doc/medias/media@{a}"
                                          for a in ("ext", "h", "label", "lenght", "url", "w"))})
    got = call("doc.get", token=token, doc_id=doc.id, extra="tags,notes")["doc"]
    assert got["description"] == "It's a car"
    assert [t["label"] for t in got["thumbs"]["thumb"]] == ["75x", "100", "240", "500"]
    car = str(Tag.get(Tag.norm == "car").id)
    assert got["tags"]["tag"][0] == {"tag_id": car, "type": "keyword", "id": car,
                                     "user_id": str(owner.id), "tag": "Car",
                                     "keyword": "car", "title": "Car"}
    assert got["notes"]["note"][0]["_value"] == "Nice"
    assert got["you"]["visits"] == "1"
    assert "geo" not in got and "md5" not in got


def test_get_carries_what_live_clients_read(call, owner, member, make_doc, token_for, clock):
    doc = make_doc(owner, is_public=False, is_friend=True, modified_at=1_700_000_000)
    Relation.create(user=owner, contact=member, is_friend=True)
    Tag.create(doc=doc, tag="Blue Sky", norm="blue sky", added_by=owner)
    Tag.create(doc=doc, type="member", tag="member", norm=str(member.id), member=member,
               added_by=owner)
    Note.create(doc=doc, author=member, x=1, y=2, w=3, h=4, content="Line one\nline two")
    Note.create(doc=doc, author=owner, member=member, x=5, y=6, w=7, h=8, content="A Member")
    Comment.create(doc=doc, author=member, content="Nice", posted_at=1_750_000_000)
    token = token_for(member, doc="read")
    got = call("doc.get", token=token, doc_id=doc.id, extra="tags,notes")["doc"]
    # Photini: keywords are the ``tag`` of keyword tags; PyIpernity: owner.user_id.
    assert [t["tag"] for t in got["tags"]["tag"] if t["type"] == "keyword"] == ["Blue Sky"]
    assert got["tags"]["tag"][1] | {"id": str(member.id), "tag": "member",
                                    "member_id": str(member.id),
                                    "title": "A Member"} == got["tags"]["tag"][1]
    icon = got["owner"].pop("icon")
    assert icon.endswith("/media/icons/default.png")
    assert got["owner"] == {"user_id": str(owner.id), "username": "owner",
                            "realname": "Key Owner", "alias": "owner", "is_pro": "0"}
    # Photini reads a note's ``content``, and ``member_id``/``membername`` when it names someone.
    plain, person = got["notes"]["note"]
    assert plain["content"] == plain["_value"] == "Line one\nline two"
    assert "member_id" not in plain and "membername" not in plain
    assert (person["member_id"], person["membername"], person["username"]) == (
        str(member.id), "A Member", "owner")
    assert got["dates"] | {"last_update_at": "1700000000", "comment_at": "1750000000",
                           "last_comment_at": "1750000000"} == got["dates"]
    assert got["visibility"]["isfriends"] == got["visibility"]["isfriend"] == "1"
    assert got["you"]["last_visit_at"] == got["you"]["last_visit"] == str(int(clock()))
    xml = call.raw("doc.get", "xml", token=token, doc_id=doc.id, extra="notes").content
    assert b'content="Line one&#10;line two"' in xml  # the newline survives in the attribute


def test_get_private_doc_is_not_found_for_a_stranger(call, owner, stranger, make_doc, token_for):
    doc = make_doc(owner, is_public=False)
    for token in (None, token_for(stranger, doc="read")):
        answer = call("doc.get", token=token, doc_id=doc.id)["api"]
        assert (answer["code"], answer["message"]) == ("1", "Document not found")
    assert call("doc.get", doc_id=doc.id + 100)["api"]["code"] == "1"
    assert call("doc.get", doc_id="abc")["api"]["code"] == "1"
    assert call("doc.get")["api"]["code"] == "1"
    assert call("doc.get", token=token_for(owner, doc="read"), doc_id=doc.id)["doc"]


def test_count_albums_counts_the_albums_the_caller_may_see(call, owner, stranger, make_doc,
                                                           token_for):
    doc = make_doc(owner)
    for is_public in (True, False, False):
        album = Album.create(owner=owner, title="Album", is_public=is_public)
        AlbumDoc.create(album=album, doc=doc)

    def albums(token: str | None) -> str:
        return call("doc.get", token=token, doc_id=doc.id)["doc"]["count"]["albums"]

    assert albums(None) == albums(token_for(stranger, doc="read")) == "1"
    assert albums(token_for(owner, doc="read")) == "3"


def test_family_doc_needs_doc_read_in_the_token(call, owner, member, make_doc, token_for):
    doc = make_doc(owner, is_public=False, is_family=True)
    Relation.create(user=owner, contact=member, is_family=True)
    assert call("doc.get", token=token_for(member, doc="read"), doc_id=doc.id)["doc"]
    assert call("doc.get", token=token_for(member, profile="read"),
                doc_id=doc.id)["api"]["code"] == "1"


def test_a_visit_is_an_authenticated_view_by_someone_else(call, owner, member, make_doc,
                                                           token_for, clock):
    doc = make_doc(owner)
    call("doc.get", doc_id=doc.id)
    call("doc.get", token=token_for(owner, doc="read"), doc_id=doc.id)
    assert DocVisit.select().count() == 0
    token = token_for(member, doc="read")
    call("doc.get", token=token, doc_id=doc.id)
    call("doc.get", token=token, doc_id=doc.id)  # same visit (30-minute window)
    clock.advance(3600)
    got = call("doc.get", token=token, doc_id=doc.id)["doc"]
    assert got["count"]["visits"] == "2" and got["you"]["visits"] == "2"
    visit = DocVisit.get()
    assert (visit.visits, visit.first_visit_at, visit.visited_at) == (
        2, int(clock()) - 3600, int(clock()))


def test_get_medias_shape(call, owner, make_doc):
    doc = make_doc(owner, license=1)
    xml = call.raw("doc.getMedias", "xml", doc_id=doc.id).content
    compare("doc.getMedias", xml, added={"thumbs/thumb@ext"},
            absent={"thumbs/thumb@secret", "players", "medias", "original@filename",
                    *(f"players/player@{a}" for a in ("h", "label", "type", "url", "w")),
                    "players/player", "medias/media",
                    *(f"medias/media@{a}" for a in ("ext", "h", "label", "lenght", "url", "w"))})
    got = call("doc.getMedias", doc_id=doc.id)
    assert got["original"]["url"].endswith(f"/{doc.id}.{doc.original_secret}.original.jpg")


def test_copyright_original_only_for_its_owner(call, owner, make_doc, token_for):
    doc = make_doc(owner, license=0)
    assert "original" not in call("doc.getMedias", doc_id=doc.id)
    mine = call("doc.getMedias", token=token_for(owner, doc="read"), doc_id=doc.id)
    assert mine["original"]["ext"] == "jpg"
    assert call("doc.getMedias", doc_id=doc.id + 1)["api"]["code"] == "1"


def test_get_exif(call, owner, make_doc):
    doc = make_doc(owner, exif=json.dumps({"Make": "Canon", "ISO": 200}))
    got = call("doc.getExif", doc_id=doc.id)["exif"]
    assert got == {"doc_id": str(doc.id), "total": "2",
                   "tag": [{"name": "Make", "value": "Canon"}, {"name": "ISO", "value": "200"}]}
    private = make_doc(owner, is_public=False)
    assert call("doc.getExif", doc_id=private.id)["api"]["code"] == "1"


def test_get_context_skips_what_the_caller_may_not_see(call, owner, make_doc, count_queries):
    docs = [make_doc(owner, is_public=(i != 2)) for i in range(6)]
    with count_queries() as log:
        raw = call.raw("doc.getContext", "xml", doc_id=docs[3].id, prev=2, next=5)
    assert len(log) <= 8
    compare("doc.getContext", raw.content)
    got = call("doc.getContext", doc_id=docs[3].id, prev=2, next=5)
    assert [d["doc_id"] for d in got["prev"]["doc"]] == [str(docs[1].id), str(docs[0].id)]
    assert [d["index"] for d in got["prev"]["doc"]] == ["-1", "-2"]
    assert [d["doc_id"] for d in got["next"]["doc"]] == [str(docs[4].id), str(docs[5].id)]
    assert got["next"]["count"] == "2" and got["doc"]["index"] == "0"
    assert call("doc.getContext", doc_id=docs[2].id)["api"]["code"] == "1"
    assert call("doc.getContext", doc_id=docs[3].id, prev=51)["api"]["code"] == "2"
