"""``post.set``: a post's title, text and sharing, by its owner (issue 14). Posts are written and
deleted on the blog pages (api/web/posts.py); the API edits them."""

from __future__ import annotations

from typing import Annotated

from api.content.posts import owned_post, post_problem
from api.core.context import Call
from api.core.registry import MethodGroup
from api.formats.tree import Text
from api.methods.common import InvalidArgument, IsFamily, IsFriend, IsPublic
from api.methods.post.shared import BLOG_WRITE, CallersPostId, PostNotFound
from api.models.docs import share_level
from api.models.posts import BODY_CHARS, Post

group = MethodGroup()


@group.method("post.set", modified_at="1401919200",
              title="Edit a article title and description.", token=True, sign=True,
              post=True, safety=True, perms=BLOG_WRITE, missing=PostNotFound,
              invalid=InvalidArgument,
              response='<post post_id title share><description/></post>')
def set_(call: Call, post_id: CallersPostId,
         title: Annotated[str | None, "The new title (not empty)."] = None,
         description: Annotated[str | None, f"The new text, in the blog markup (at most "
                                            f"{BODY_CHARS:,} characters)."] = None,
         is_public: IsPublic = None, is_family: IsFamily = None, is_friend: IsFriend = None,
         perm_comment: Annotated[int | None, "Who may comment: 0 only you … 4 contacts, 5 "
                                             "everybody."] = None) -> dict:
    """Change what is sent of a post's title, text, sharing and comment permission; the rest
    stays."""
    post = owned_post(call.user, post_id, PostNotFound)
    changes = {name: value for name, value in (
        ("title", title), ("body", description), ("is_public", is_public),
        ("is_family", is_family), ("is_friend", is_friend), ("perm_comment", perm_comment))
        if value is not None}
    for name, value in changes.items():
        setattr(post, name, value)
    problem = post_problem(post.title, post.body, post.perm_comment)
    if problem:
        raise InvalidArgument(problem)
    if changes:
        post.modified_at = call.now()
        Post.update(**changes, modified_at=post.modified_at).where(Post.id == post.id).execute()
    return {"post": {"post_id": post.id, "title": post.title,
                     "share": share_level(post.is_public, post.is_family, post.is_friend),
                     "description": Text(post.body)}}
