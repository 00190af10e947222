"""Result trees of blog posts (issue 14), shared by the ``post.*`` methods and the blog pages (a
page shows what the method answers, through the visitor's eyes): one post as post.get shows it,
a page of posts (post.getList, post.search) and a page of comments (post.comments.getList), each
in a fixed number of queries whatever its size. The shapes are written down in
docs/protocol-choices.md, "Blog posts (issue 14)".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from peewee import Expression, fn

from api.content.access import perm_allows, relation_to, visible_to
from api.content.comments import comment_trees
from api.content.faves import is_fave, page_total
from api.content.posts import (
    attached_doc_ids,
    post_link,
    post_viewer,
    render_body,
)
from api.content.trees import doc_trees, member_tree, owner_tree
from api.content.visits import record_visit
from api.core.context import Call
from api.core.paging import NUMBER_OF, Page, Paging
from api.formats.tree import Text
from api.models.docs import Doc, share_level
from api.models.posts import Post, PostComment, PostVisit
from keys.models import User

POSTS_PAGE = Paging("posts", default=20, maximum=100, wording=NUMBER_OF)  # as doc.getList
COMMENTS_PAGE = Paging("Comments", default=100, maximum=100)  # as doc.comments.getList
NEWEST_FIRST = (Post.posted_at.desc(), Post.id.desc())


def may_comment(call: Call, post: Post) -> bool:
    """Whether the caller passes the post's ``perm_comment`` level."""
    return perm_allows(post.perm_comment, call.user, post.owner_id,
                       relation_to(post.owner_id, call.user))


def visibility_tree(post: Post) -> dict[str, Any]:
    """``<visibility ispublic isfriend isfamily share/>``, as doc.get's."""
    return {"ispublic": post.is_public, "isfriend": post.is_friend, "isfamily": post.is_family,
            "share": share_level(post.is_public, post.is_family, post.is_friend)}


def dates_tree(post: Post) -> dict[str, Any]:
    """``<dates posted_at created_at last_update_at/>`` (UNIX seconds)."""
    return {"posted_at": post.posted_at, "created_at": post.created_at,
            "last_update_at": post.modified_at}


def post_tree(call: Call, post: Post, thumbsize: str) -> dict[str, Any]:
    """``<post …>`` of post.get: the text as written (``description``) and as HTML
    (``content``), the attached documents the reader may see; an authenticated view by another
    member counts as a visit."""
    visit = record_visit(call, post, PostVisit, "post")
    viewer = post_viewer(call) or call.user
    last_comment = (PostComment.select(fn.MAX(PostComment.posted_at))
                    .where(PostComment.post == post.id).scalar()) or 0
    docs = attached_docs(call, post, thumbsize)
    return {
        "post_id": post.id, "title": post.title, "link": post_link(call.base_url, post),
        "user_id": post.owner_id, "owner": member_tree(call, post.owner),
        "description": Text(post.body), "content": Text(str(render_body(post.body))),
        "dates": {**dates_tree(post), "last_comment_at": last_comment},
        "count": {"visits": post.visits, "faves": post.faves, "comments": post.comments,
                  "docs": docs["total"]},
        "visibility": visibility_tree(post),
        "permissions": {"comment": post.perm_comment},
        "can": {"fave": viewer is not None and viewer.id != post.owner_id,
                "comment": may_comment(call, post),
                "edit": viewer is not None and viewer.id == post.owner_id},
        "you": {"isfave": is_fave(post, call.user), "visits": visit.visits if visit else 0,
                "last_visit_at": visit.visited_at if visit else 0} if call.user else None,
        "docs": docs,
    }


def attached_docs(call: Call, post: Post, thumbsize: str) -> dict[str, Any]:
    """``<docs total><doc …><thumb/></doc></docs>``: the attached documents the post's reader
    may see (through the same eyes as the post), in the post's order, as doc.getList's items."""
    order = attached_doc_ids(post)
    shown = {doc.id: doc for doc in Doc.select()
             .where(Doc.id.in_(order), visible_to(Doc, post_viewer(call)))} if order else {}
    docs = [shown[doc_id] for doc_id in order if doc_id in shown]
    items = doc_trees(docs, call, set(), thumbsize)
    return {"total": len(items), "doc": items}


def list_item(call: Call, post: Post) -> dict[str, Any]:
    """``<post post_id title link user_id><owner/><dates/><count/><visibility/></post>`` of
    post.getList and post.search (owner joined: no query)."""
    return {"post_id": post.id, "title": post.title, "link": post_link(call.base_url, post),
            "user_id": post.owner_id, "owner": owner_tree(post.owner),
            "dates": dates_tree(post),
            "count": {"visits": post.visits, "faves": post.faves, "comments": post.comments},
            "visibility": visibility_tree(post)}


def posts_page(call: Call, where: Sequence[Expression], page: Page) -> dict[str, Any]:
    """``<posts total page pages per_page count><post/>…</posts>``: the posts of open members
    matching ``where``, newest first, owners joined; a count only when the page is full."""
    query = (Post.select(Post, User)
             .join(User, on=(Post.owner == User.id))
             .where(User.status == "open", *where))
    rows = list(page.apply(query.order_by(*NEWEST_FIRST)))
    items = [list_item(call, post) for post in rows]
    return {"posts": {**page.attrs(page_total(query, page, len(items)), len(items)),
                      "post": items}}


def blog_page(call: Call, owner: User, page: Page) -> dict[str, Any]:
    """A member's posts the caller may see, newest first (post.getList, ``/blog/<alias>``)."""
    return posts_page(call, [Post.owner == owner.id, visible_to(Post, post_viewer(call))], page)


def comments_page(post: Post, page: Page, extras: set[str]) -> dict[str, Any]:
    """``<comments post_id total …><comment/>…</comments>``: a post's comments and replies,
    oldest first, authors joined, in one query (``Post.comments`` is the total)."""
    items = comment_trees(PostComment, PostComment.post == post.id, page, extras)
    return {"comments": {"post_id": post.id, **page.attrs(post.comments, len(items)),
                         "comment": items}}
