"""The ``tags.*`` family (spec §9 service tags, §9.1, §10.1, §10.3, §10.4): the documents carrying a
tag, and a member's tags with how often each is used.

A member's tags are the tags on the member's documents, whoever put them there, counted over the
documents the caller may see at safesurf's default (all audiences, and the caller's own): a tag
only on private, family or friends' documents the caller cannot see, or only on adult ones, is
neither listed nor counted, and a closed member's member tag is not listed
(docs/protocol-choices.md, "Tags and explore").
``type``: ``keyword``, ``member``, or ``machine`` (keywords written ``namespace:predicate=value``,
stored as keywords). A keyword's ``id`` is one of its tag rows' (any of them names the keyword in
tags.docs.getList); a member tag's is the member's user id, as in doc.tags.getList.
"""

from __future__ import annotations

from typing import Annotated, Any

from peewee import Expression, fn

from api.content.access import (
    find_open_member,
    media_clause,
    safesurf_clause,
    viewer_of,
    visible_to,
)
from api.content.listing import docs_page
from api.content.trees import parse_extra, parse_thumbsize
from api.core.context import Call
from api.core.errors import method_error
from api.core.ids import as_id
from api.core.paging import NUMBER_OF, Paging
from api.core.registry import MethodGroup
from api.methods.common import (
    READ,
    InvalidArgument,
    MediaFilter,
    Safesurf,
    Thumbsize,
    UserNotFound,
    extra_help,
)
from api.models.docs import Doc, Tag
from keys.models import User

group = MethodGroup()

TagNotFound = method_error(1, "Tag not found", "The type is not keyword, machine or member, or no "
                                               "tag has this id.")
TagInvalidArgument = method_error(2, "Invalid argument", "An argument has an invalid value "
                                                         "(safesurf, media, sort).")
TagUserNotFound = method_error(3, "User not found", "The user ID is either invalid or the account "
                                                    "is closed/suspended.")

TAG_TYPES = ("keyword", "member", "machine")
MACHINE_FORM = "_%:%=%"  # namespace:predicate=value (a LIKE pattern; ``_machine_form`` alike)
TAG_DOCS_EXTRAS = ("owner", "dates", "medias", "original")  # spec §10.3
TAG_DOCS_PAGE = Paging("documents", default=100, maximum=500, wording=NUMBER_OF)  # spec §10.1
LIST_COUNT, MAX_LIST_COUNT = 100, 1000  # tags.user.getList (spec §10.1)
POPULAR_COUNT, MAX_POPULAR_COUNT = 20, 100  # tags.user.getPopular
SORTS: dict[str, tuple[Any, ...]] = {  # spec §10.4: tags.docs.getList's sort
    "popular": (Doc.faves.desc(), Doc.visits.desc(), Doc.id.desc()),
    "posted-desc": (Doc.posted_at.desc(), Doc.id.desc()),
    "posted-asc": (Doc.posted_at.asc(), Doc.id.asc()),
}

TagType = Annotated[str, "keyword (default), member or machine (namespace:predicate=value "
                         "keywords)."]
TagRef = Annotated[str, "The tag: a keyword's tag id (or its text), a member's user id (or web "
                        "alias)."]
MemberId = Annotated[str, "The member's ID or web alias; defaults to the authenticated user (the "
                          "token's)."]


def _tag_docs(type_: str, tag_id: str, viewer: User | None) -> Expression:
    """The docs carrying the tag ``tag_id`` names (its id, a keyword's text, a member's id or
    alias): a sub-select the (norm, type, doc) index answers. A tag id names a keyword only when
    its row is on a doc ``viewer`` may see: another is code 1, as a missing id (a private doc's
    tag id would otherwise tell its keyword, and that the doc exists)."""
    if type_ == "member":
        member = find_open_member(tag_id)
        if member is None:
            raise TagNotFound(f"member {tag_id}")
        norm = str(member.id)  # a member tag's norm is the member's id (api/content/tags.py)
    else:
        row_id = as_id(tag_id.strip())
        if row_id is not None:
            row = (Tag.select(Tag.norm).join(Doc, on=(Tag.doc == Doc.id))
                   .where(Tag.id == row_id, Tag.type == "keyword", visible_to(Doc, viewer))
                   .first())
            if row is None:
                raise TagNotFound(f"tag {row_id}")
            norm = row.norm
        else:
            norm = " ".join(tag_id.split()).lower()
        if not norm or (type_ == "machine" and not _machine_form(norm)):
            raise TagNotFound(f"{type_} {tag_id!r}")
    stored = "member" if type_ == "member" else "keyword"
    return Doc.id.in_(Tag.select(Tag.doc).where(Tag.norm == norm, Tag.type == stored))


def _machine_form(norm: str) -> bool:
    """Whether a keyword matches ``MACHINE_FORM``: a colon after its first character, then ``=``."""
    colon = norm.find(":", 1)
    return colon > 0 and "=" in norm[colon + 1:]


@group.method("tags.docs.getList", title="Return the list of documents for a given tag",
              safety=True, perms=READ, missing=TagNotFound, invalid=TagInvalidArgument,
              errors=(TagUserNotFound,), modified_at="1283378400",
              response='<docs page="1" total="51258" pages="2563" per_page="20">'
                       '<doc doc_id title license><owner user_id/><thumb/></doc></docs>')
def docs_get_list(call: Call, type: Annotated[str, "keyword, member or machine."], id: TagRef,
                  user_id: Annotated[str, "Only this member's docs (ID or web alias)."] = "",
                  safesurf: Safesurf = None, media: MediaFilter = "",
                  extra: Annotated[str, extra_help(TAG_DOCS_EXTRAS)] = "",
                  sort: Annotated[str, "popular (default), posted-desc or posted-asc."] = "",
                  thumbsize: Thumbsize = "",
                  per_page: Annotated[int | None, TAG_DOCS_PAGE.per_page_help] = None,
                  page: Annotated[int | None, TAG_DOCS_PAGE.page_help] = None) -> dict:
    """Return the documents the caller may see that carry a keyword, machine or member tag.

    Most popular first (faves, then visits) unless ``sort`` says otherwise; safesurf works as in
    doc.search; each doc carries its owner.
    """
    kind = type.strip().lower()
    if kind not in TAG_TYPES:
        raise TagNotFound(f"type={type}")
    order = SORTS.get((sort or "popular").strip().lower())
    if order is None:
        raise TagInvalidArgument(f"sort={sort}")
    viewer = viewer_of(call)
    where = [_tag_docs(kind, id, viewer), visible_to(Doc, viewer),
             safesurf_clause(viewer, safesurf, TagInvalidArgument)]
    media_only = media_clause(media, TagInvalidArgument)
    if media_only is not None:
        where.append(media_only)
    if user_id:
        owner = find_open_member(user_id)
        if owner is None:
            raise TagUserNotFound(user_id)
        where.append(Doc.owner == owner.id)
    extras = parse_extra(extra, TAG_DOCS_EXTRAS) | {"owner"}  # the owner is in every item
    return docs_page(call, where, order, TAG_DOCS_PAGE.page(page, per_page), extras,
                     parse_thumbsize(thumbsize))


def _member_tags(call: Call, user_id: str, type_: str, count: int, maximum: int, *,
                 popular: bool) -> dict:
    """``<tags count type user_id><tag/>…</tags>``: the member's tags of one type, counted over
    the docs the caller may see (one grouped query); alphabetical, or the most used first."""
    user = find_open_member(user_id) if user_id else call.user
    if user is None:
        raise UserNotFound(user_id or "missing parameter user_id")
    kind = (type_ or "keyword").strip().lower()
    if kind not in TAG_TYPES:
        raise InvalidArgument(f"type={type_}")
    if count < 1:
        raise InvalidArgument(f"count={count}")
    docs = fn.COUNT(fn.DISTINCT(Tag.doc))
    viewer = viewer_of(call)
    # safesurf's default (all audiences, the viewer's own docs whatever their safety), as
    # tags.docs.getList applies it: a tag listed here is one it shows documents for.
    where = [Doc.owner == user.id, visible_to(Doc, viewer),
             safesurf_clause(viewer, None, InvalidArgument),
             Tag.type == ("member" if kind == "member" else "keyword")]
    if kind == "machine":
        where.append(Tag.norm ** MACHINE_FORM)
    rows: Any = (Tag.select(fn.MIN(Tag.member if kind == "member" else Tag.id).alias("id"),
                            fn.MIN(Tag.tag).alias("tag"), docs.alias("docs"))
                 .join(Doc, on=(Tag.doc == Doc.id)))
    if kind == "member":  # a closed member's tag is left out, as tags.docs.getList answers 1
        rows = rows.switch(Tag).join(User, on=(Tag.member == User.id))
        where.append(User.status == "open")
    rows = (rows.where(*where)
                 .group_by(Tag.norm)
                 .order_by(*((docs.desc(), Tag.norm) if popular else (Tag.norm,)))
                 .limit(min(count, maximum)))
    tags = [({"id": row["id"], "tag": row["tag"], "docs": row["docs"], "posts": 0} if popular
             else {"type": kind, "id": row["id"], "tag": row["tag"]}) for row in rows.dicts()]
    return {"tags": {"count": len(tags), "type": kind, "user_id": user.id, "tag": tags}}


@group.method("tags.user.getList", title="Get the tags list for a given user.",
              missing=UserNotFound, invalid=InvalidArgument, modified_at="1255816800",
              response='<tags count="22" type="keyword" user_id="56685">'
                       '<tag type="keyword" id="125652" tag="car!"/></tags>')
def user_get_list(call: Call, user_id: MemberId = "", type: TagType = "keyword",
                  count: Annotated[int, f"How many tags (default {LIST_COUNT}, max "
                                        f"{MAX_LIST_COUNT})."] = LIST_COUNT) -> dict:
    """Return a member's tags of one type, in alphabetical order.

    Only tags on documents the caller may see, for all audiences (the caller's own whatever
    their safety), as tags.docs.getList shows them by default; a closed member's tag is left
    out. A count over the maximum is lowered to it.
    """
    return _member_tags(call, user_id, type, count, MAX_LIST_COUNT, popular=False)


@group.method("tags.user.getPopular", title="Get the most used tags for a given user.",
              missing=UserNotFound, invalid=InvalidArgument, modified_at="1255816800",
              response='<tags count="22" type="keyword" user_id="56685">'
                       '<tag id="125652" tag="car!" docs="253" posts="18"/></tags>')
def user_get_popular(call: Call, user_id: MemberId = "", type: TagType = "keyword",
                     count: Annotated[int, f"How many tags (default {POPULAR_COUNT}, max "
                                           f"{MAX_POPULAR_COUNT})."] = POPULAR_COUNT) -> dict:
    """Return a member's most used tags of one type, the most used first.

    ``docs`` counts the member's documents carrying the tag that the caller may see, as
    tags.user.getList picks them (all audiences, the caller's own whatever their safety);
    ``posts`` (blog posts) is 0, as no posts are kept here.
    """
    return _member_tags(call, user_id, type, count, MAX_POPULAR_COUNT, popular=True)
