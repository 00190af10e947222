"""Blog posts (issue 14): a member's posts with the documents attached to them, their comments
and replies, faves and visits (post.*, the pages at ``/blog/<alias>``).

A post is shared like a document (``is_public``/``is_family``/``is_friend``, so the doc rules of
api/content/access.py apply to it as they are) and commented under ``perm_comment``. ``visits``,
``faves`` and ``comments`` count their rows; they move with atomic ``x = x ± 1`` updates in the
transaction that adds or removes a row (docs/protocol-choices.md, "Blog posts (issue 14)").
"""

from __future__ import annotations

from peewee import BooleanField, CharField, ForeignKeyField, IntegerField, TextField

from api.models.docs import Doc
from keys.db import BaseModel, IdField
from keys.models import User, now

TITLE_CHARS = 255
BODY_CHARS = 65_536  # a post's text, as written (its markup included)
COMMENT_CHARS = 16_384
MAX_POST_DOCS = 50  # documents attached to one post


class Post(BaseModel):
    """One blog post: a title and a body in the small markup of api/content/posts.py."""

    id = IdField()
    owner = ForeignKeyField(User, backref="+", on_delete="CASCADE")
    owner_id: int
    title = CharField(max_length=TITLE_CHARS, default="")
    body = TextField(default="")
    is_public = BooleanField(default=True)
    is_family = BooleanField(default=False)
    is_friend = BooleanField(default=False)
    perm_comment = IntegerField(default=5)  # §10.4 levels, as a document's
    created_at = IntegerField(default=now)
    posted_at = IntegerField(default=now)  # the order of a blog
    modified_at = IntegerField(default=now)
    visits = IntegerField(default=0)
    faves = IntegerField(default=0)
    comments = IntegerField(default=0)

    class Meta:
        table_name = "posts"
        indexes = ((("owner", "posted_at", "id"), False), (("posted_at", "id"), False))


class PostDoc(BaseModel):
    """A document attached to a post (only its owner's own), in the owner's order."""

    id = IdField()
    post = ForeignKeyField(Post, backref="+", on_delete="CASCADE")
    post_id: int
    doc = ForeignKeyField(Doc, backref="+", on_delete="CASCADE")
    doc_id: int
    position = IntegerField(default=0)

    class Meta:
        table_name = "post_docs"
        indexes = ((("post", "doc"), True), (("post", "position"), False))


class PostComment(BaseModel):
    """A comment on a post; ``parent`` makes it a reply (the fields of a doc's Comment)."""

    id = IdField()
    post = ForeignKeyField(Post, backref="+", on_delete="CASCADE")
    post_id: int
    author = ForeignKeyField(User, backref="+", on_delete="CASCADE")
    author_id: int
    parent = ForeignKeyField("self", null=True, backref="+", on_delete="CASCADE")
    parent_id: int | None
    content = TextField(default="")
    posted_at = IntegerField(default=now)
    modified_at = IntegerField(default=0)

    class Meta:
        table_name = "post_comments"
        indexes = ((("post", "posted_at"), False),)


class PostFave(BaseModel):
    """``user`` faved ``post`` (post.getFaves); ``Post.faves`` counts these rows."""

    id = IdField()
    user = ForeignKeyField(User, backref="+", on_delete="CASCADE")
    user_id: int
    post = ForeignKeyField(Post, backref="+", on_delete="CASCADE")
    post_id: int
    faved_at = IntegerField(default=now)

    class Meta:
        table_name = "post_faves"
        indexes = ((("user", "post"), True), (("post", "faved_at"), False))


class PostVisit(BaseModel):
    """The latest authenticated view of a post by someone other than its owner."""

    id = IdField()
    post = ForeignKeyField(Post, on_delete="CASCADE")
    post_id: int
    visitor = ForeignKeyField(User, backref="+", on_delete="CASCADE")
    visitor_id: int
    visited_at = IntegerField(default=now)
    first_visit_at = IntegerField(default=now)
    visits = IntegerField(default=1)

    class Meta:
        table_name = "post_visits"
        indexes = ((("post", "visitor"), True), (("post", "visited_at"), False))


MODELS: tuple = (Post, PostDoc, PostComment, PostFave, PostVisit)
