"""``doc.comments.*`` (spec §9): comments and replies under ``perm_comment``; edited by their
author, deleted by the author or the doc's owner.
"""

from __future__ import annotations

from typing import Annotated, Any

from peewee import fn

from api.content.access import visible_doc
from api.content.comments import comment_on, comment_trees, single_comment_tree
from api.content.trees import parse_extra
from api.core.context import Call
from api.core.errors import method_error
from api.core.paging import Paging
from api.core.registry import MethodGroup
from api.formats.tree import Text
from api.methods.common import READ, WRITE, DocNotFound, InvalidArgument
from api.methods.doc.shared import NotAllowed, Preview, TheDoc, may, require
from api.models.docs import Comment, Doc
from keys.db import db

group = MethodGroup()

CommentNotFound = method_error(1, "Comment not found", "The comment ID is invalid or insufficient "
                                                       "permissions to view its document.")


def comment_link(call: Call, doc: Doc, comment_id: int) -> str:
    """The comment's anchor on the doc's page."""
    return f"{call.base_url}/doc/{doc.owner_id}/{doc.id}/comment/{comment_id}#comment{comment_id}"


def written_tree(call: Call, doc: Doc, comment: Comment) -> dict[str, Any]:
    """The comment a write method answers with (add, edit, reply)."""
    return {"parent_id": comment.parent_id, "comment_id": comment.id,
            "user_id": comment.author_id, "posted_at": comment.posted_at,
            "modified_at": comment.modified_at or None,
            "link": comment_link(call, doc, comment.id) if comment.id else None,
            "content": Text(comment.content)}


def comment_with_doc(call: Call, comment_id: int) -> tuple[Comment, Doc]:
    """A comment on a doc the caller may see (author joined), else 1; the doc locked first
    inside a write."""
    return comment_on(call, Comment, "doc", comment_id, visible_doc, CommentNotFound)


def recount(doc: Doc) -> None:
    """Keep Doc.comments equal to the comment rows (replies included)."""
    total = Comment.select(fn.COUNT(Comment.id)).where(Comment.doc == doc)
    Doc.update(comments=total).where(Doc.id == doc.id).execute()


def post_comment(call: Call, doc: Doc, content: str, parent: Comment | None,
                 preview: bool) -> dict:
    """Write a comment or reply (perm_comment decides who may) and answer with it."""
    require(may(call, doc, doc.perm_comment), "perm_comment")
    if not content.strip():
        raise InvalidArgument("empty content")
    comment = Comment(doc=doc, author=call.require_user(), parent=parent, content=content,
                      posted_at=call.now())
    if not preview:
        with db.atomic():
            comment.save()
            Doc.update(comments=Doc.comments + 1).where(Doc.id == doc.id).execute()
    return {"comment": written_tree(call, doc, comment)}


_WRITTEN_SHAPE = '<comment comment_id user_id posted_at link><content/></comment>'
COMMENTS_PAGE = Paging("Comments", default=100, maximum=100)


@group.method("doc.comments.add", title="Comment on a document.", service="doc", token=True,
              sign=True, post=True, perms=WRITE, missing=InvalidArgument, invalid=DocNotFound,
              errors=(NotAllowed,),
              response=_WRITTEN_SHAPE)
def comments_add(call: Call, doc_id: TheDoc, content: Annotated[str, "The comment."],
                 preview: Preview = False) -> dict:
    """Comment on a doc the caller may see."""
    return post_comment(call, visible_doc(call, doc_id, DocNotFound), content, None, preview)


@group.method("doc.comments.reply", title="Reply to a comment on a document.", service="doc",
              token=True, sign=True, post=True, perms=WRITE, missing=InvalidArgument,
              invalid=CommentNotFound, errors=(NotAllowed,),
              response=_WRITTEN_SHAPE.replace("<comment ", "<comment parent_id "))
def comments_reply(call: Call, comment_id: Annotated[int, "The comment to answer."],
                   content: Annotated[str, "The reply."]) -> dict:
    """Answer a comment; the reply points at it with parent_id."""
    parent, doc = comment_with_doc(call, comment_id)
    return post_comment(call, doc, content, parent, False)


@group.method("doc.comments.edit", title="Edit a comment on a document.", service="doc",
              token=True, sign=True, post=True, perms=WRITE, missing=InvalidArgument,
              invalid=CommentNotFound, errors=(NotAllowed,),
              response=_WRITTEN_SHAPE.replace("posted_at", "posted_at modified_at"))
def comments_edit(call: Call, comment_id: Annotated[int, "One of your comments."],
                  content: Annotated[str, "The new text."], preview: Preview = False) -> dict:
    """Change the text of one of the caller's comments."""
    comment, doc = comment_with_doc(call, comment_id)
    require(comment.author_id == call.require_user().id, "only the author edits a comment")
    if not content.strip():
        raise InvalidArgument("empty content")
    comment.content, comment.modified_at = content, call.now()
    if not preview:
        comment.save()
    return {"comment": written_tree(call, doc, comment)}


@group.method("doc.comments.delete", title="Delete a comment on a document.", service="doc",
              token=True, sign=True, post=True, perms=WRITE, missing=CommentNotFound,
              invalid=CommentNotFound, errors=(NotAllowed,))
def comments_delete(call: Call,
                    comment_id: Annotated[int, "The comment; its replies go with it."]) -> dict:
    """Delete a comment and its replies (its author or the doc's owner)."""
    comment, doc = comment_with_doc(call, comment_id)
    require(call.require_user().id in (comment.author_id, doc.owner_id), "not your comment")
    with db.atomic():
        comment.delete_instance()  # replies go by ON DELETE CASCADE
        recount(doc)
    return {}


@group.method("doc.comments.get", title="Return a comment on a document.", service="doc",
              perms=READ, missing=CommentNotFound, invalid=CommentNotFound,
              response='<comment comment_id user_id username posted_at canreply canedit '
                       'candelete parent_id><content/><parent comment_id user_id username>'
                       '<content/></parent></comment>')
def comments_get(call: Call, comment_id: Annotated[int, "The comment."],
                 extra: Annotated[str, "owner: add the author's details."] = "") -> dict:
    """One comment, what the caller may do with it, and the comment it answers."""
    comment, doc = comment_with_doc(call, comment_id)
    parent = comment_with_doc(call, comment.parent_id)[0] if comment.parent_id is not None else None
    return {"comment": single_comment_tree(comment, parent, parse_extra(extra, ("owner",)),
                                           can_reply=may(call, doc, doc.perm_comment),
                                           owner_id=doc.owner_id, user=call.user)}


@group.method("doc.comments.getList", title="Return the comments on a document.", service="doc",
              perms=READ, missing=DocNotFound, invalid=InvalidArgument,
              response='<comments doc_id total page pages per_page count>'
                       '<comment comment_id parent_id user_id username posted_at modified_at>'
                       '<content/></comment></comments>')
def comments_get_list(call: Call, doc_id: TheDoc,
                      extra: Annotated[str, "owner: add each author's details."] = "",
                      per_page: Annotated[int | None, COMMENTS_PAGE.per_page_help] = None,
                      page: Annotated[int | None, COMMENTS_PAGE.page_help] = None) -> dict:
    """A doc's comments and replies, oldest first, authors joined: two queries a page."""
    doc = visible_doc(call, doc_id, DocNotFound)
    slice_ = COMMENTS_PAGE.page(page, per_page)
    query = Comment.select().where(Comment.doc == doc)
    total = query.count()
    items = comment_trees(Comment, Comment.doc == doc, slice_, parse_extra(extra, ("owner",)))
    return {"comments": {"doc_id": doc.id, **slice_.attrs(total, len(items)), "comment": items}}
