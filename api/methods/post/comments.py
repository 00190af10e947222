"""``post.comments.*`` (issue 14): comments and replies on a post under its ``perm_comment``,
shaped as doc.comments.*'s; edited by their author, deleted by the author or the post's owner.
``Post.comments`` counts the rows, replies included."""

from __future__ import annotations

from typing import Annotated, Any

from peewee import fn

from api.content.comments import comment_on, single_comment_tree, with_author
from api.content.post_trees import COMMENTS_PAGE, comments_page, may_comment
from api.content.posts import post_link, visible_post
from api.content.trees import parse_extra
from api.core.context import Call
from api.core.errors import method_error
from api.core.registry import MethodGroup
from api.formats.tree import Text
from api.methods.common import InvalidArgument
from api.methods.post.shared import (
    POST_READ,
    POST_WRITE,
    NotAllowed,
    PostId,
    PostNotFound,
    require,
)
from api.models.posts import COMMENT_CHARS, Post, PostComment

group = MethodGroup()

CommentNotFound = method_error(1, "Comment not found", "The comment ID is invalid or insufficient "
                                                       "permissions to view its post.")
Content = Annotated[str, f"The text (at most {COMMENT_CHARS:,} characters)."]
_WRITTEN = '<comment comment_id user_id posted_at link><content/></comment>'


def _comment_tree(call: Call, post: Post, comment: PostComment) -> dict[str, Any]:
    """The comment a write method answers with (add, reply, edit)."""
    return {"comment_id": comment.id, "parent_id": comment.parent_id,
            "user_id": comment.author_id, "posted_at": comment.posted_at,
            "modified_at": comment.modified_at or None,
            "link": f"{post_link(call.base_url, post)}#comment{comment.id}" if comment.id else None,
            "content": Text(comment.content)}


def _checked(content: str) -> str:
    if not content.strip():
        raise InvalidArgument("empty content")
    if len(content) > COMMENT_CHARS:
        raise InvalidArgument(f"content longer than {COMMENT_CHARS} characters")
    return content


def _comment_with_post(call: Call, comment_id: int) -> tuple[PostComment, Post]:
    """A comment (author joined) on a post the caller may see, else 1; the post locked first
    inside a write."""
    return comment_on(call, PostComment, "post", comment_id, visible_post, CommentNotFound)


def _write(call: Call, post: Post, content: str, parent: PostComment | None) -> dict:
    """A new comment or reply, counted in ``Post.comments`` in the same transaction."""
    require(may_comment(call, post), "perm_comment")
    comment = PostComment.create(post=post.id, author=call.require_user(),
                                 content=_checked(content), parent=parent, posted_at=call.now())
    Post.update(comments=Post.comments + 1).where(Post.id == post.id).execute()
    return {"comment": _comment_tree(call, post, comment)}


@group.method("post.comments.add", modified_at="1403042400",
              title="Comment on a post.", token=True, sign=True, post=True,
              perms=POST_WRITE, missing=InvalidArgument, invalid=PostNotFound,
              errors=(NotAllowed,), response=_WRITTEN)
def comments_add(call: Call, post_id: PostId, content: Content) -> dict:
    """Comment on a post the caller may see, if its perm_comment lets them."""
    return _write(call, visible_post(call, post_id, PostNotFound), content, None)


@group.method("post.comments.reply", modified_at="1403042400",
              title="Reply to a comment on a post.", token=True,
              sign=True, post=True, perms=POST_WRITE, missing=InvalidArgument,
              invalid=CommentNotFound, errors=(NotAllowed,),
              response=_WRITTEN.replace("<comment ", "<comment parent_id "))
def comments_reply(call: Call, comment_id: Annotated[int, "The comment to answer."],
                   content: Content) -> dict:
    """Answer a comment; the reply points at it with parent_id."""
    parent, post = _comment_with_post(call, comment_id)
    return _write(call, post, content, parent)


@group.method("post.comments.edit", modified_at="1403042400",
              title="Edit a comment on a post.", token=True, sign=True,
              post=True, perms=POST_WRITE, missing=InvalidArgument, invalid=CommentNotFound,
              errors=(NotAllowed,),
              response=_WRITTEN.replace("posted_at", "posted_at modified_at"))
def comments_edit(call: Call, comment_id: Annotated[int, "One of your comments."],
                  content: Content) -> dict:
    """Change the text of one of the caller's comments."""
    comment, post = _comment_with_post(call, comment_id)
    require(comment.author_id == call.require_user().id, "only the author edits a comment")
    comment.content, comment.modified_at = _checked(content), call.now()
    comment.save()
    return {"comment": _comment_tree(call, post, comment)}


@group.method("post.comments.delete", modified_at="1403042400",
              title="Delete a comment on a post.", token=True,
              sign=True, post=True, perms=POST_WRITE, missing=CommentNotFound,
              invalid=CommentNotFound, errors=(NotAllowed,))
def comments_delete(call: Call,
                    comment_id: Annotated[int, "The comment; its replies go with it."]) -> dict:
    """Delete a comment and its replies (its author or the post's owner)."""
    comment, post = _comment_with_post(call, comment_id)
    require(call.require_user().id in (comment.author_id, post.owner_id), "not your comment")
    comment.delete_instance()  # replies go by ON DELETE CASCADE
    total = PostComment.select(fn.COUNT(PostComment.id)).where(PostComment.post == post.id)
    Post.update(comments=total).where(Post.id == post.id).execute()
    return {}


@group.method("post.comments.get", modified_at="1403042400",
              title="Return a comment on a post.", perms=POST_READ,
              missing=CommentNotFound, invalid=CommentNotFound,
              response='<comment comment_id parent_id user_id username posted_at canreply '
                       'canedit candelete><content/><parent comment_id user_id username>'
                       '<content/></parent></comment>')
def comments_get(call: Call, comment_id: Annotated[int, "The comment."],
                 extra: Annotated[str, "owner: add the author's details."] = "") -> dict:
    """One comment, what the caller may do with it, and the comment it answers."""
    comment, post = _comment_with_post(call, comment_id)
    # A parent is gone only if deleted since (its replies went with it): then none is shown.
    parent = (with_author(PostComment, comment.parent_id) if comment.parent_id is not None
              else None)
    return {"comment": single_comment_tree(comment, parent, parse_extra(extra, ("owner",)),
                                           can_reply=may_comment(call, post),
                                           owner_id=post.owner_id, user=call.user)}


@group.method("post.comments.getList", modified_at="1403042400",
              title="Return the comments on a post.", perms=POST_READ,
              missing=PostNotFound, invalid=InvalidArgument,
              response='<comments post_id total page pages per_page count>'
                       '<comment comment_id parent_id user_id username posted_at modified_at>'
                       '<content/></comment></comments>')
def comments_get_list(call: Call, post_id: PostId,
                      extra: Annotated[str, "owner: add each author's details."] = "",
                      per_page: Annotated[int | None, COMMENTS_PAGE.per_page_help] = None,
                      page: Annotated[int | None, COMMENTS_PAGE.page_help] = None) -> dict:
    """A post's comments and replies, oldest first, authors joined: two queries a page at
    most."""
    post = visible_post(call, post_id, PostNotFound)
    return comments_page(post, COMMENTS_PAGE.page(page, per_page), parse_extra(extra, ("owner",)))
