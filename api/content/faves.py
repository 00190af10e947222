"""Faves of documents, albums and blog posts: adding and removing one member's fave with its
counter, whether a member faved something, and who faved it (faves.*, doc.getFaves,
album.getFaves, post.getFaves, the post page's fave button).

``Doc.faves``, ``Album.faves`` and ``Post.faves`` count the fave rows. A row and its counter
change in the same transaction (the write methods and the post page run in one), and the counter
moves only when a row was really inserted or deleted: the unique ``(user, doc)`` /
``(user, album)`` / ``(user, post)`` index decides, so a repeated add, a remove of a non-fave and
two clients faving at once all leave exact counts, on SQLite and PostgreSQL alike
(docs/protocol-choices.md, "Faves (issue 13)"). Every caller of ``add_fave`` and ``remove_fave``
locks the faved (parent) row first, then the fave row is written: faves.* through
``_locked_row``, the post page through ``visible_post``, so two writers never wait on each other
in opposite orders.
"""

from __future__ import annotations

from typing import Any

from api.core.paging import NUMBER_OF, Page, Paging
from api.models.docs import Album, AlbumFave, Doc, DocFave
from api.models.posts import Post, PostFave
from keys.models import User

# doc.getFaves, album.getFaves (and post.getFaves): 10 members a page, at most 100 (spec §10.1).
FAVERS_PAGE = Paging("members", default=10, maximum=100, wording=NUMBER_OF)

# The fave table of each faved model, and its column naming the faved row.
_FAVES: dict[type[Any], tuple[Any, Any]] = {Doc: (DocFave, DocFave.doc),
                                           Album: (AlbumFave, AlbumFave.album),
                                           Post: (PostFave, PostFave.post)}
Faved = Doc | Album | Post


def add_fave(target: Faved, user: User, now: int) -> bool:
    """``user`` faves ``target`` once; True when the fave is new (the counter went up)."""
    fave, column = _FAVES[type(target)]
    inserted = (fave.insert({fave.user: user.id, column: target.id, fave.faved_at: now})
                .on_conflict_ignore()
                .as_rowcount()
                .execute())
    if inserted:
        _count(target, +1)
    return bool(inserted)


def remove_fave(target: Faved, user: User) -> bool:
    """``user``'s fave of ``target`` goes; True when there was one (the counter went down)."""
    fave, column = _FAVES[type(target)]
    removed = fave.delete().where(fave.user == user.id, column == target.id).execute()
    if removed:
        _count(target, -1)
    return bool(removed)


def _count(target: Faved, step: int) -> None:
    """An atomic ``faves = faves ± 1``: never a value read before and written back."""
    model = type(target)
    model.update(faves=model.faves + step).where(model.id == target.id).execute()


def is_fave(target: Faved, user: User | None) -> bool:
    """Whether ``user`` faved ``target`` (``<you isfave/>``); one query, none without a user."""
    if user is None:
        return False
    fave, column = _FAVES[type(target)]
    return fave.select().where(fave.user == user.id, column == target.id).exists()


def page_total(query: Any, page: Page, shown: int) -> int:
    """The total of a paged list: known without a query on its last page, else counted."""
    if shown < page.per_page and (shown or page.page == 1):
        return page.offset + shown
    return int(query.order_by().count())


def favers(target: Faved, page: Page, **head: int) -> dict[str, Any]:
    """``<faves total page pages per_page count><fave user_id username faved_at/></faves>``:
    the open members who faved ``target``, latest first, in two queries at most; ``head`` goes
    first in ``<faves>`` (post.getFaves names its ``post_id``)."""
    fave, column = _FAVES[type(target)]
    query = (fave.select(fave, User)
             .join(User, on=(fave.user == User.id))
             .where(column == target.id, User.status == "open"))
    rows = list(page.apply(query.order_by(fave.faved_at.desc(), fave.id.desc())))
    items = [{"user_id": row.user.id, "username": row.user.username, "faved_at": row.faved_at}
             for row in rows]
    return {"faves": {**head, **page.attrs(page_total(query, page, len(items)), len(items)),
                      "fave": items}}
