"""Blog posts as the methods and the pages see them (issue 14): whose eyes a call looks through,
finding the post a call may see or change, the small markup of a post's text, writing a post with
its attached documents (a member's fave of a post is api/content/faves.py's, as a doc's).

A post is shared like a document, so ``can_view`` and ``visible_to`` (api/content/access.py) are
its rules too. A token widens what a caller sees when it grants ``blog:read`` (what post.get
requires) or ``post:read`` (the other read methods): without either, the caller is an anonymous
visitor. A post the caller may not see answers as a missing one.

The markup (docs/protocol-choices.md, "Blog posts (issue 14)"): everything is escaped first;
then blank lines make paragraphs, a line break stays one, ``**strong**``, ``*emphasis*``, and
``[label](https://…)`` or a bare ``http(s)://`` address make links. Nothing else becomes HTML, so
a script tag, a ``javascript:`` link or a quote meant to end an attribute stays text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from markupsafe import Markup, escape

from api.content.access import PERM_LEVELS, can_view
from api.core.context import Call
from api.core.errors import ApiError
from api.models.docs import Doc
from api.models.posts import BODY_CHARS, MAX_POST_DOCS, TITLE_CHARS, Post, PostDoc
from keys.db import locked
from keys.models import User


def post_viewer(call: Call) -> User | None:
    """The member whose eyes a call looks through (blog:read or post:read), else None."""
    if call.allows("blog", "read") or call.allows("post", "read"):
        return call.user
    return None


def visible_post(call: Call, post_id: int, not_found: type[ApiError]) -> Post:
    """The post with its owner joined, if the caller may see it (locked inside a write)."""
    post = locked(Post.select(Post, User)
                  .join(User, on=(Post.owner == User.id))
                  .where(Post.id == post_id, User.status == "open"), Post).first()
    if post is None or not can_view(post, post_viewer(call)):
        raise not_found(f"post {post_id}")
    return post


def owned_post(user: User | None, post_id: int, not_found: type[ApiError]) -> Post:
    """``user``'s own post (owner joined, locked inside a write); another's is not found."""
    post = locked(Post.select(Post, User)
                  .join(User, on=(Post.owner == User.id))
                  .where(Post.id == post_id), Post).first()
    if post is None or user is None or post.owner_id != user.id:
        raise not_found(f"post {post_id}")
    return post


def post_link(base_url: str, post: Post) -> str:
    """The post's page, ``/blog/<alias>/<post_id>`` (its owner joined)."""
    return f"{base_url}/blog/{post.owner.username}/{post.id}"


# -- the markup ----------------------------------------------------------------------------------

# Applied to escaped text, where no raw <, >, " or ' is left: an address ends at a space, a
# bracket or a parenthesis, and is read an entity (``&amp;``) or a character at a time, so its
# length cap never cuts an entity in two. A label holds no bracket either, so a failed attempt
# never scans past the next ``[``: one pass over the text, whatever it holds.
_ADDRESS = r"https?://(?:&[#0-9a-z]{2,6};|[^\s()\[\]&]){1,2000}"
_LINK = re.compile(rf"\[([^\[\]\n]{{1,500}})\]\(({_ADDRESS})\)|({_ADDRESS})")
_STARS = re.compile(r"\*+")
_PARAGRAPHS = re.compile(r"\n[ \t]*\n+")
_TAGS = {1: "em", 2: "strong"}


def render_body(text: str) -> Markup:
    """A post's text as safe HTML: paragraphs, line breaks, strong, emphasis and http(s) links,
    in time linear in its length and always well nested."""
    paragraphs = _PARAGRAPHS.split(text.replace("\r\n", "\n").replace("\r", "\n").strip())
    return Markup("\n".join(f"<p>{_inline(str(escape(p)))}</p>" for p in paragraphs if p))


def _inline(escaped: str) -> str:
    """Links first (their addresses keep every character); emphasis only between them."""
    out, start = [], 0
    for found in _LINK.finditer(escaped):
        out.append(_emphasis(escaped[start:found.start()]))
        label, target, bare = found.groups()
        href = target or bare
        out.append(f'<a href="{href}" rel="nofollow noopener">{_emphasis(label or bare)}</a>')
        start = found.end()
    out.append(_emphasis(escaped[start:]))
    return "".join(out).replace("\n", "<br>\n")


def _emphasis(escaped: str) -> str:
    """``*emphasis*`` and ``**strong**`` in one pass over the runs of stars.

    A run of one star is emphasis, of two strong, longer runs stay text. A run opens when a
    non-space follows it and closes when a non-space precedes it (closing first, when both). At
    most one of each is open, so the open ones are a stack of two at most: closing the outer one
    leaves the inner one's stars as text, and the tags always nest. An opener never closed stays
    text too.
    """
    out: list[str] = []
    open_at: dict[int, int] = {}  # run length (1, 2) → index in ``out`` of its opening stars
    start = 0
    for run in _STARS.finditer(escaped):
        out.append(escaped[start:run.start()])
        start = run.end()
        stars = run.group()
        out.append(stars)
        size = len(stars)
        if size > 2:
            continue
        before = escaped[run.start() - 1] if run.start() else " "
        after = escaped[run.end()] if run.end() < len(escaped) else " "
        if size in open_at and not before.isspace():
            opened = open_at.pop(size)
            open_at = {other: at for other, at in open_at.items() if at < opened}
            out[opened], out[-1] = f"<{_TAGS[size]}>", f"</{_TAGS[size]}>"
        elif size not in open_at and not after.isspace():
            open_at[size] = len(out) - 1
    out.append(escaped[start:])
    return "".join(out)


# -- writing -------------------------------------------------------------------------------------

def post_problem(title: str, body: str, perm_comment: int) -> str:
    """Why a post's fields are refused (the page shows it, post.set answers 2), or ""."""
    if not title.strip():
        return "A post needs a title."
    if len(title) > TITLE_CHARS:
        return f"The title is longer than {TITLE_CHARS} characters."
    if len(body) > BODY_CHARS:
        return f"The text is longer than {BODY_CHARS:,} characters."
    if perm_comment not in PERM_LEVELS:
        return "Choose who may comment."
    return ""


def own_doc_ids(owner: User, doc_ids: Sequence[int]) -> list[int]:
    """Those of ``doc_ids`` that are ``owner``'s documents, in order, at most MAX_POST_DOCS."""
    wanted = list(dict.fromkeys(doc_ids))[:MAX_POST_DOCS]
    if not wanted:
        return []
    mine = {doc.id for doc in Doc.select(Doc.id).where(Doc.id.in_(wanted), Doc.owner == owner)}
    return [doc_id for doc_id in wanted if doc_id in mine]


def attach_docs(post: Post, doc_ids: Sequence[int]) -> None:
    """Replace the post's documents by ``doc_ids`` (already checked to be its owner's)."""
    PostDoc.delete().where(PostDoc.post == post.id).execute()
    if doc_ids:
        PostDoc.insert_many([{"post": post.id, "doc": doc_id, "position": index}
                             for index, doc_id in enumerate(doc_ids)]).execute()


def attached_doc_ids(post: Post) -> list[int]:
    """The post's documents, in order."""
    return [row.doc_id for row in PostDoc.select(PostDoc.doc).where(PostDoc.post == post.id)
            .order_by(PostDoc.position, PostDoc.id)]
