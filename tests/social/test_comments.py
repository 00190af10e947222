"""doc.comments.*: comments and replies, perm_comment, who may edit and delete, counts, paging."""

from __future__ import annotations

from api.models.docs import Comment, Doc
from tests.docs.shapes import compare


def comments_of(doc) -> int:
    return Doc.get_by_id(doc.id).comments


def test_shapes_match_the_spec(call, token_for, owner, member, make_doc):
    doc = make_doc(owner)
    mine, theirs = token_for(owner, doc="write"), token_for(member, doc="write")
    compare("doc.comments.add", call.raw("doc.comments.add", "xml", token=theirs, doc_id=doc.id,
                                         content="This is <b>your</b> comment.").content)
    first = Comment.get().id
    compare("doc.comments.edit", call.raw("doc.comments.edit", "xml", token=theirs,
                                          comment_id=first, content="Modified").content)
    compare("doc.comments.reply", call.raw("doc.comments.reply", "xml", token=mine,
                                           comment_id=first, content="A reply").content)
    reply = Comment.select().order_by(Comment.id.desc()).get().id
    compare("doc.comments.get", call.raw("doc.comments.get", "xml", comment_id=reply).content)
    compare("doc.comments.getList", call.raw("doc.comments.getList", "xml",
                                             doc_id=doc.id).content)
    assert call("doc.comments.delete", token=theirs, comment_id=first) == {
        "api": {"status": "ok"}}


def test_add_reply_edit_get(call, as_user, owner, member, make_doc, clock):
    doc = make_doc(owner)
    added = as_user(member, "doc.comments.add", doc_id=doc.id, content="<b>Nice</b>")["comment"]
    assert added["content"] == "<b>Nice</b>" and added["user_id"] == str(member.id)
    assert added["link"].endswith(f"/doc/{owner.id}/{doc.id}/comment/{added['comment_id']}"
                                  f"#comment{added['comment_id']}")
    assert "modified_at" not in added and "parent_id" not in added
    reply = as_user(owner, "doc.comments.reply", comment_id=added["comment_id"],
                    content="Thanks")["comment"]
    assert reply["parent_id"] == added["comment_id"]
    clock.advance(60)
    edited = as_user(member, "doc.comments.edit", comment_id=added["comment_id"],
                     content="Very nice")["comment"]
    assert edited["modified_at"] == "1800000060" and edited["posted_at"] == "1800000000"
    got = as_user(member, "doc.comments.get", comment_id=reply["comment_id"], level="read",
                  extra="owner")["comment"]
    assert (got["username"], got["canreply"], got["canedit"], got["candelete"]) == (
        "owner", "1", "0", "0")
    assert got["owner"]["username"] == "owner"
    assert got["parent"] == {"comment_id": added["comment_id"], "user_id": str(member.id),
                             "username": "member", "content": "Very nice"}
    assert comments_of(doc) == 2


def test_preview_saves_nothing(as_user, owner, make_doc):
    doc = make_doc(owner)
    got = as_user(owner, "doc.comments.add", doc_id=doc.id, content="Draft", preview=1)
    assert got["comment"]["content"] == "Draft" and "comment_id" not in got["comment"]
    assert Comment.select().count() == 0 and comments_of(doc) == 0


def test_delete_rights_and_counts(as_user, owner, member, stranger, make_doc):
    doc = make_doc(owner)
    top = as_user(member, "doc.comments.add", doc_id=doc.id, content="a")["comment"]["comment_id"]
    reply = as_user(stranger, "doc.comments.reply", comment_id=top, content="b")["comment"]
    as_user(member, "doc.comments.reply", comment_id=reply["comment_id"], content="c")
    other = as_user(stranger, "doc.comments.add", doc_id=doc.id, content="d")["comment"]
    assert comments_of(doc) == 4
    assert as_user(stranger, "doc.comments.delete", comment_id=top)["api"]["code"] == "3"
    assert as_user(member, "doc.comments.edit", comment_id=other["comment_id"],
                   content="x")["api"]["code"] == "3"
    assert as_user(owner, "doc.comments.edit", comment_id=other["comment_id"],
                   content="x")["api"]["code"] == "3"  # only the author edits
    assert as_user(owner, "doc.comments.delete", comment_id=other["comment_id"]) == {
        "api": {"status": "ok"}}
    assert as_user(member, "doc.comments.delete", comment_id=top) == {"api": {"status": "ok"}}
    assert comments_of(doc) == 0 and Comment.select().count() == 0  # replies went with it


def test_perm_comment(as_user, owner, member, stranger, relate, make_doc):
    doc = make_doc(owner, perm_comment=3)
    relate(owner, member, family=True)
    assert as_user(member, "doc.comments.add", doc_id=doc.id, content="x")["comment"]
    assert as_user(stranger, "doc.comments.add", doc_id=doc.id, content="x")["api"]["code"] == "3"
    top = Comment.get().id
    assert as_user(stranger, "doc.comments.reply", comment_id=top, content="x")["api"][
        "code"] == "3"
    got = as_user(stranger, "doc.comments.get", comment_id=top, level="read")["comment"]
    assert got["canreply"] == "0"


def test_errors_and_invisibility(call, as_user, owner, stranger, make_doc):
    doc = make_doc(owner)
    private = make_doc(owner, is_public=False)
    assert as_user(owner, "doc.comments.add", doc_id=doc.id)["api"]["code"] == "2"
    assert as_user(owner, "doc.comments.add", doc_id=doc.id, content="   ")["api"]["code"] == "2"
    assert as_user(owner, "doc.comments.add", doc_id=999, content="x")["api"]["code"] == "1"
    assert as_user(owner, "doc.comments.reply", comment_id=999, content="x")["api"][
        "code"] == "1"
    assert as_user(owner, "doc.comments.edit", comment_id=999, content="x")["api"]["code"] == "1"
    assert as_user(owner, "doc.comments.delete", comment_id=999)["api"]["code"] == "1"
    assert call("doc.comments.get", comment_id=999)["api"]["code"] == "1"
    assert call("doc.comments.getList")["api"]["code"] == "1"
    hidden = as_user(owner, "doc.comments.add", doc_id=private.id, content="x")["comment"]
    assert as_user(stranger, "doc.comments.add", doc_id=private.id, content="x")["api"][
        "code"] == "1"
    assert call("doc.comments.get", comment_id=hidden["comment_id"])["api"]["code"] == "1"
    assert call("doc.comments.getList", doc_id=private.id)["api"]["code"] == "1"
    assert as_user(stranger, "doc.comments.delete", comment_id=hidden["comment_id"])["api"][
        "code"] == "1"
    assert as_user(owner, "doc.comments.add", doc_id=doc.id, content="x", level="read")["api"][
        "code"] == "110"


def test_get_list_paging_and_query_counts(call, as_user, owner, member, make_doc,
                                          count_queries):
    doc = make_doc(owner)
    authors = (owner, member)

    def add(n: int) -> None:
        for i in range(n):
            as_user(authors[i % 2], "doc.comments.add", doc_id=doc.id, content=f"c{i}")

    def counted() -> int:
        with count_queries() as log:
            call("doc.comments.getList", doc_id=doc.id, extra="owner")
        return len(log)

    add(3)
    few = counted()
    add(20)
    assert counted() == few
    page = call("doc.comments.getList", doc_id=doc.id, per_page=10, page=3)["comments"]
    assert {k: page[k] for k in ("doc_id", "total", "page", "pages", "per_page", "count")} == {
        "doc_id": str(doc.id), "total": "23", "page": "3", "pages": "3", "per_page": "10",
        "count": "3"}
    assert page["comment"][-1]["content"] == "c19"
    assert call("doc.comments.getList", doc_id=doc.id)["comments"]["per_page"] == "100"
    assert call("doc.comments.getList", doc_id=doc.id, per_page=101)["comments"][
        "per_page"] == "100"  # lowered to the maximum
    assert call("doc.comments.getList", doc_id=doc.id, per_page=-1)["api"]["code"] == "143"
