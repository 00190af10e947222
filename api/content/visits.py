"""Visits of documents, albums and blog posts: an authenticated view by a member other than the
owner, counted once per visit window so repeated reads cost no database write; and who visited
(doc.getVisitors, album.getVisitors, post.getVisitors)."""

from __future__ import annotations

import logging
from typing import Any

from api.core.context import Call
from api.core.paging import NUMBER_OF, Page, Paging
from keys.db import db, is_busy
from keys.models import User

log = logging.getLogger("api.visits")

VISIT_WINDOW = 1800  # repeated views by one member within 30 minutes count as one visit
# doc.getVisitors, post.getVisitors: 10 visitors a page, at most 100 (album.getVisitors words its
# help as the original's album page did, so it keeps its own).
VISITORS_PAGE = Paging("visitors", default=10, maximum=100, wording=NUMBER_OF)


def record_visit(call: Call, row: Any, visit_model: Any, target: str) -> Any | None:
    """Count ``call.user``'s view of ``row`` (a Doc, Album or Post) in ``visit_model``; the visit
    row (None, or the one read before, when ``row`` is deleted meanwhile: a read that raced a
    delete still answers what it read)."""
    user = call.user
    if user is None or user.id == row.owner_id:
        return None
    now = call.now()
    target_field = getattr(visit_model, target)
    this_visit = (target_field == row.id) & (visit_model.visitor == user.id)
    visit = visit_model.get_or_none(this_visit)
    if visit is not None and now - visit.visited_at < VISIT_WINDOW:
        return visit  # the same visit still: no write on the read path
    model = type(row)
    try:
        with db.atomic():
            # The counter first: the parent's row is locked before its visit row is written, the
            # order in which deleting the parent goes (its row, then its visits by cascade), so
            # the two never deadlock. A parent deleted meanwhile updates nothing: no visit.
            if not model.update(visits=model.visits + 1).where(model.id == row.id).execute():
                return visit
            (visit_model
             .insert(**{target: row.id}, visitor=user.id, visited_at=now, first_visit_at=now,
                     visits=1)
             .on_conflict(conflict_target=[target_field, visit_model.visitor],
                          update={visit_model.visited_at: now,
                                  visit_model.visits: visit_model.visits + 1})
             .execute())
    except Exception as error:
        if not is_busy(error):
            raise
        # A read must not fail because its side effect could not be counted: the visit is lost.
        log.warning("visit to %s %s not counted, database busy", target, row.id)
        return visit
    row.visits += 1
    return visit_model.get_or_none(this_visit)  # (None if the parent went since)


def visitors(row: Any, visit_model: Any, target: str, page: Page, **head: int) -> dict[str, Any]:
    """``<visits total page pages per_page count><visit user_id username visited_at
    first_visit_at visits/></visits>``: the members who visited ``row`` (its ``visit_model``
    rows, ``target`` naming their column), latest first, in two queries whatever the page (the
    total is always counted); ``head`` goes first in ``<visits>`` (post.getVisitors names its
    ``post_id``)."""
    query = (visit_model.select(visit_model, User)
             .join(User, on=(visit_model.visitor == User.id))
             .where(getattr(visit_model, target) == row.id))
    rows = list(page.apply(query.order_by(visit_model.visited_at.desc(),
                                          visit_model.id.desc())))
    items = [{"user_id": visit.visitor.id, "username": visit.visitor.username,
              "visited_at": visit.visited_at, "first_visit_at": visit.first_visit_at,
              "visits": visit.visits} for visit in rows]
    return {"visits": {**head, **page.attrs(query.count(), len(items)), "visit": items}}
