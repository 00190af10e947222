"""Comments as the read methods show them, for documents (``Comment``) and blog posts
(``PostComment``) alike: the two models have the same fields (``author``, ``parent``,
``content``, ``posted_at``, ``modified_at``), so doc.comments.* and post.comments.* share their
lookups and their shapes here. Who may comment, and how each counter is kept, stay with each
family."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from api.content.trees import owner_tree
from api.core.context import Call
from api.core.errors import ApiError
from api.core.paging import Page
from api.formats.tree import Text
from keys.db import db
from keys.models import User


def _with_authors(model: Any) -> Any:
    """``model``'s comments with their authors joined."""
    return model.select(model, User).join(User, on=(model.author == User.id))


def with_author(model: Any, comment_id: int) -> Any | None:
    """The comment with its author joined, or None."""
    return _with_authors(model).where(model.id == comment_id).first()


def comment_on(call: Call, model: Any, target: str, comment_id: int,
               find_visible: Callable[[Call, int, type[ApiError]], Any],
               not_found: type[ApiError]) -> tuple[Any, Any]:
    """A ``model`` comment (author joined) and the row it is on (its ``target`` column), which
    ``find_visible`` (visible_doc, visible_post) finds if the caller may see it; else
    ``not_found``.

    Inside a write the commented row is locked first (as every comment's delete locks it), then
    the comment read again: one deleted meanwhile is not found, rather than replied to (a
    foreign-key violation) or saved back as if it still were."""
    comment = _existing(model, comment_id, not_found)
    row = find_visible(call, getattr(comment, f"{target}_id"), not_found)
    return (_existing(model, comment_id, not_found) if db.in_transaction() else comment), row


def _existing(model: Any, comment_id: int, not_found: type[ApiError]) -> Any:
    """The comment with its author joined, else ``not_found``."""
    comment = with_author(model, comment_id)
    if comment is None:
        raise not_found(f"comment {comment_id}")
    return comment


def comment_tree(comment: Any, extras: set[str]) -> dict[str, Any]:
    """A comment as the read methods show it (author joined)."""
    return {"comment_id": comment.id, "parent_id": comment.parent_id,
            "user_id": comment.author.id, "username": comment.author.username,
            "posted_at": comment.posted_at, "modified_at": comment.modified_at or None,
            "owner": owner_tree(comment.author) if "owner" in extras else None,
            "content": Text(comment.content)}


def comment_trees(model: Any, where: Any, page: Page, extras: set[str]) -> list[dict[str, Any]]:
    """One page of the comments and replies matching ``where``, oldest first: one query."""
    rows = page.apply(_with_authors(model).where(where).order_by(model.posted_at, model.id))
    return [comment_tree(comment, extras) for comment in rows]


def single_comment_tree(comment: Any, parent: Any | None, extras: set[str], *, can_reply: bool,
                        owner_id: int, user: User | None) -> dict[str, Any]:
    """``<comment … canreply canedit candelete><content/><parent/></comment>``: one comment,
    what ``user`` may do with it (its author edits it; its author or ``owner_id``, the commented
    row's owner, deletes it) and ``parent``, the comment it answers (author joined), if any."""
    tree = comment_tree(comment, extras)
    user_id = user.id if user is not None else None
    tree.update({"canreply": can_reply,
                 "canedit": user_id == comment.author_id,
                 "candelete": user_id in (comment.author_id, owner_id)})
    if parent is not None:
        tree["parent"] = {"comment_id": parent.id, "user_id": parent.author.id,
                          "username": parent.author.username, "content": Text(parent.content)}
    return tree
