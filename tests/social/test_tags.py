"""doc.tags.*: keyword and member tags, quoting, perm_tag/perm_tagme, who may remove."""

from __future__ import annotations

from api.models.docs import Doc, Tag
from keys import store
from tests.docs.shapes import compare


def words(doc) -> list[str]:
    return [t.tag for t in Tag.select().where(Tag.doc == doc).order_by(Tag.id)]


def test_shapes_match_the_spec(call, token_for, owner, member, make_doc):
    doc = make_doc(owner)
    token = token_for(owner, doc="write")
    compare("doc.tags.add", call.raw("doc.tags.add", "xml", token=token, doc_id=doc.id,
                                     keywords="car!", members="member").content)
    compare("doc.tags.edit", call.raw("doc.tags.edit", "xml", token=token, doc_id=doc.id,
                                      keywords="car!,Chevrolet!", members=member.id).content)
    compare("doc.tags.getList", call.raw("doc.tags.getList", "xml", doc_id=doc.id).content)
    assert call("doc.tags.remove", token=token, doc_id=doc.id, type="keyword",
                id="car!") == {"api": {"status": "ok"}}


def test_members_are_named_in_any_case(as_user, owner, make_doc):
    capital = store.add_user("Alice.Smith", "a password")
    doc = make_doc(owner)
    got = as_user(owner, "doc.tags.add", doc_id=doc.id, members="alice.smith")["tags"]
    assert [(t["type"], t["id"]) for t in got["tag"]] == [("member", str(capital.id))]


def test_add_parses_quoted_keywords_and_members(as_user, owner, member, make_doc):
    doc = make_doc(owner)
    got = as_user(owner, "doc.tags.add", doc_id=doc.id,
                  keywords='"blue sky",sunset, Sunset ,"a, b"', members=f"member,{owner.id},ghost")
    tags = got["tags"]
    assert tags["added"] == "5" and tags["dropped"] == "1"  # ghost is nobody; repeats fold
    assert [(t["type"], t["tag"]) for t in tags["tag"]] == [
        ("keyword", "blue sky"), ("keyword", "sunset"), ("keyword", "a, b"),
        ("member", "member"), ("member", "owner")]
    assert tags["tag"][3]["id"] == str(member.id)  # a member tag's id is the member
    again = as_user(owner, "doc.tags.add", doc_id=doc.id, keywords="SUNSET")["tags"]
    assert again["added"] == "0" and again["dropped"] == "1" and again["tag"] == []


def test_get_list(call, as_user, owner, make_doc):
    doc = make_doc(owner)
    as_user(owner, "doc.tags.add", doc_id=doc.id, keywords="one,two")
    got = call("doc.tags.getList", doc_id=doc.id)["tags"]
    assert got["total"] == "2" and got["tag"][0]["user_id"] == str(owner.id)
    assert got["tag"][0]["added_at"] == "1800000000"
    empty = call("doc.tags.getList", doc_id=make_doc(owner).id)["tags"]
    assert empty == {"total": "0", "tag": []}


def test_edit_replaces_and_is_owner_only(as_user, owner, member, make_doc):
    doc = make_doc(owner)
    as_user(owner, "doc.tags.add", doc_id=doc.id, keywords="a,b", members="member")
    got = as_user(owner, "doc.tags.edit", doc_id=doc.id, keywords="b,c")["tags"]
    assert got["added"] == "1" and got["dropped"] == "2"
    assert words(doc) == ["b", "c"]
    assert as_user(member, "doc.tags.edit", doc_id=doc.id, keywords="x")["api"]["code"] == "3"
    as_user(owner, "doc.tags.edit", doc_id=doc.id)
    assert words(doc) == []


def test_perm_tag_and_perm_tagme(as_user, owner, member, stranger, relate, make_doc):
    doc = make_doc(owner, perm_tag=1, perm_tagme=4)
    relate(owner, member, friend=True)
    assert as_user(member, "doc.tags.add", doc_id=doc.id, keywords="x")["api"]["code"] == "3"
    assert as_user(member, "doc.tags.add", doc_id=doc.id, members="stranger")["api"][
        "code"] == "3"  # tagging someone else needs perm_tag
    assert as_user(member, "doc.tags.add", doc_id=doc.id, members="member")["tags"][
        "added"] == "1"  # tagging yourself: perm_tagme (4, contacts) is enough
    assert as_user(stranger, "doc.tags.add", doc_id=doc.id, members="stranger")["api"][
        "code"] == "3"
    Doc.update(perm_tag=2).where(Doc.id == doc.id).execute()
    assert as_user(member, "doc.tags.add", doc_id=doc.id, keywords="x")["tags"]["added"] == "1"
    Doc.update(perm_tag=0).where(Doc.id == doc.id).execute()
    assert as_user(owner, "doc.tags.add", doc_id=doc.id, keywords="mine")["tags"]["added"] == "1"


def test_remove_by_owner_tagger_or_tagged_member(as_user, owner, member, stranger, relate,
                                                 make_doc):
    doc = make_doc(owner, perm_tag=5, perm_tagme=5)
    as_user(member, "doc.tags.add", doc_id=doc.id, keywords="by member")
    as_user(stranger, "doc.tags.add", doc_id=doc.id, keywords="by stranger", members="member")
    remove = "doc.tags.remove"
    assert as_user(stranger, remove, doc_id=doc.id, type="keyword", id="by member")["api"][
        "code"] == "3"
    assert as_user(member, remove, doc_id=doc.id, type="keyword", id="BY MEMBER") == {
        "api": {"status": "ok"}}
    assert as_user(member, remove, doc_id=doc.id, type="member", id="member") == {
        "api": {"status": "ok"}}  # untag yourself
    tag_id = Tag.get(Tag.tag == "by stranger").id
    assert as_user(owner, remove, doc_id=doc.id, type="keyword", id=tag_id) == {
        "api": {"status": "ok"}}
    assert words(doc) == []


def test_errors_and_invisible_docs(call, as_user, owner, stranger, make_doc):
    doc = make_doc(owner)
    private = make_doc(owner, is_public=False)
    assert as_user(owner, "doc.tags.add", doc_id=doc.id)["api"]["code"] == "2"
    assert as_user(owner, "doc.tags.add", keywords="x")["api"]["code"] == "1"
    assert as_user(owner, "doc.tags.add", doc_id=999, keywords="x")["api"]["code"] == "1"
    assert as_user(owner, "doc.tags.remove", doc_id=doc.id, type="machine", id="1")["api"][
        "code"] == "2"
    assert as_user(owner, "doc.tags.remove", doc_id=doc.id, type="keyword", id="none")["api"][
        "code"] == "2"
    assert as_user(owner, "doc.tags.remove", doc_id=doc.id, type="member", id="ghost")["api"][
        "code"] == "2"
    assert as_user(owner, "doc.tags.add", doc_id=doc.id, keywords="x", level="read")["api"][
        "code"] == "110"
    for method, params in (("doc.tags.add", {"keywords": "x"}), ("doc.tags.edit", {}),
                           ("doc.tags.remove", {"type": "keyword", "id": "x"})):
        assert as_user(stranger, method, doc_id=private.id, **params)["api"]["code"] == "1"
    assert call("doc.tags.getList", doc_id=private.id)["api"]["code"] == "1"
    assert as_user(stranger, "doc.tags.getList", doc_id=private.id, level="read")["api"][
        "code"] == "1"
    assert as_user(owner, "doc.tags.getList", doc_id=private.id, level="read")["tags"]
