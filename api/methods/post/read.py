"""``post.get``, ``post.getList``, ``post.search``, ``post.getContext``, ``post.getFaves``,
``post.getVisitors``: reading blog posts (issue 14). An authenticated view of another member's
post by post.get counts as a visit, as doc.get's does.
"""

from __future__ import annotations

from typing import Annotated, Any

from api.content.access import find_open_member, visible_to
from api.content.faves import FAVERS_PAGE, favers
from api.content.post_trees import (
    NEWEST_FIRST,
    POSTS_PAGE,
    blog_page,
    post_tree,
    posts_page,
)
from api.content.posts import owned_post, post_viewer, visible_post
from api.content.trees import parse_thumbsize
from api.content.visits import VISITORS_PAGE, visitors
from api.core.context import Call
from api.core.registry import MethodGroup
from api.methods.common import InvalidArgument, Thumbsize, UserNotFound
from api.methods.post.shared import (
    BLOG_READ,
    POST_READ,
    CallersPostId,
    PostId,
    PostNotFound,
)
from api.models.posts import Post, PostVisit

group = MethodGroup()
MAX_TEXT = 255  # characters of post.search's text
MAX_WORDS = 10

PerPage = Annotated[int | None, POSTS_PAGE.per_page_help]
PageNumber = Annotated[int | None, POSTS_PAGE.page_help]


@group.method("post.get", modified_at="1234998000",
              title="Get details about a post.", perms=BLOG_READ,
              missing=PostNotFound, invalid=PostNotFound,
              response='<post post_id title link user_id><owner/><description/><content/>'
                       '<dates/><count/><visibility/><permissions/><can/><you/><docs/></post>')
def get(call: Call, post_id: PostId, thumbsize: Thumbsize = "") -> dict:
    """Return a post, its text as written and as HTML, and the documents attached to it that
    the caller may see; an authenticated view by another member counts as a visit."""
    post = visible_post(call, post_id, PostNotFound)
    return {"post": post_tree(call, post, parse_thumbsize(thumbsize))}


@group.method("post.getList", modified_at="1403042400",
              title="Return the member's list of posts", safety=True,
              missing=UserNotFound, invalid=InvalidArgument,
              response='<posts total page pages per_page count><post post_id title link '
                       'user_id><owner/><dates/><count/><visibility/></post></posts>')
def get_list(call: Call,
             user_id: Annotated[str, "The member's ID or web alias; defaults to the "
                                     "authenticated user (the token's)."] = "",
             per_page: PerPage = None, page: PageNumber = None) -> dict:
    """Return a member's posts the caller may see, newest first."""
    user = find_open_member(user_id) if user_id else call.user
    if user is None:
        raise UserNotFound(user_id or "missing parameter user_id")
    return blog_page(call, user, POSTS_PAGE.page(page, per_page))


@group.method("post.search", modified_at="1403128800",
              title="Search for posts.", safety=True, perms=POST_READ,
              missing=InvalidArgument, invalid=InvalidArgument, errors=(UserNotFound,),
              response='<posts total page pages per_page count><post post_id title link '
                       'user_id><owner/><dates/><count/><visibility/></post></posts>')
def search(call: Call,
           text: Annotated[str, f"Words that must each appear in the title or the text (at "
                                f"most {MAX_WORDS} words, {MAX_TEXT} characters)."] = "",
           user_id: Annotated[str, "Only this member's posts (ID or web alias)."] = "",
           per_page: PerPage = None, page: PageNumber = None) -> dict:
    """Return the posts the caller may see whose title or text holds every word, newest
    first."""
    if len(text) > MAX_TEXT:
        raise InvalidArgument(f"text longer than {MAX_TEXT} characters")
    words = text.split()
    if len(words) > MAX_WORDS:
        raise InvalidArgument(f"more than {MAX_WORDS} words")
    where = [visible_to(Post, post_viewer(call)),
             *((Post.title.contains(word) | Post.body.contains(word)) for word in words)]
    if user_id:
        user = find_open_member(user_id)
        if user is None:
            raise UserNotFound(user_id)
        where.append(Post.owner == user.id)
    return posts_page(call, where, POSTS_PAGE.page(page, per_page))


def _neighbour(call: Call, post: Post, index: int) -> dict[str, Any]:
    """``<prev|next count><post index post_id title link user_id posted_at/></…>``: the next
    newer (index -1) or older (1) post of the owner's stream the caller may see."""
    newer = index < 0
    later = ((Post.posted_at > post.posted_at)
             | ((Post.posted_at == post.posted_at) & (Post.id > post.id)))
    earlier = ((Post.posted_at < post.posted_at)
               | ((Post.posted_at == post.posted_at) & (Post.id < post.id)))
    found = (Post.select()
             .where(Post.owner == post.owner_id, visible_to(Post, post_viewer(call)),
                    later if newer else earlier)
             .order_by(*((Post.posted_at, Post.id) if newer else NEWEST_FIRST))
             .first())
    items = [] if found is None else [{
        "index": index, "post_id": found.id, "title": found.title,
        "link": f"{call.base_url}/blog/{post.owner.username}/{found.id}",
        "user_id": found.owner_id, "posted_at": found.posted_at}]
    return {"count": len(items), "post": items}


@group.method("post.getContext", modified_at="1403128800",
              title="Get the post context in posts stream", perms=POST_READ,
              missing=PostNotFound, invalid=PostNotFound,
              response='<prev count><post index post_id title link user_id posted_at/></prev>'
                       '<next count><post index post_id title link user_id posted_at/></next>')
def get_context(call: Call, post_id: PostId) -> dict:
    """Return the posts just newer (prev) and just older (next) in the owner's blog that the
    caller may see."""
    post = visible_post(call, post_id, PostNotFound)
    return {"prev": _neighbour(call, post, -1), "next": _neighbour(call, post, 1)}


@group.method("post.getFaves", modified_at="1354057200",
              title="Return the list of members who have faved a post.",
              perms=POST_READ, missing=PostNotFound, invalid=PostNotFound,
              response='<faves total page pages per_page count>'
                       '<fave user_id username faved_at/></faves>')
def get_faves(call: Call, post_id: PostId,
              per_page: Annotated[int | None, FAVERS_PAGE.per_page_help] = None,
              page: Annotated[int | None, FAVERS_PAGE.page_help] = None) -> dict:
    """Return the open members who faved a post the caller may see, latest first."""
    post = visible_post(call, post_id, PostNotFound)
    return favers(post, FAVERS_PAGE.page(page, per_page), post_id=post.id)


@group.method("post.getVisitors", modified_at="1354057200",
              title="Return the post latest visitors.", service="doc",
              token=True, sign=True, perms=POST_READ, missing=PostNotFound,
              invalid=PostNotFound,
              response='<visits post_id total page pages per_page count>'
                       '<visit user_id username visited_at first_visit_at visits/></visits>')
def get_visitors(call: Call, post_id: CallersPostId,
                 per_page: Annotated[int | None, VISITORS_PAGE.per_page_help] = None,
                 page: Annotated[int | None, VISITORS_PAGE.page_help] = None) -> dict:
    """Return the members who read one of the caller's posts, latest first."""
    post = owned_post(call.user, post_id, PostNotFound)
    return visitors(post, PostVisit, "post", VISITORS_PAGE.page(page, per_page), post_id=post.id)
