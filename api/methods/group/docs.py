"""``group.docs.*``: a group's pool. Members add their own documents (waiting for a moderator in
a moderated group) and take them out, moderators take out any; everyone who may see the group
lists the pool, each document shown only to whom may see it (spec §9, method-shapes.md;
docs/protocol-choices.md, "Groups (issue 14)").
"""

from __future__ import annotations

from typing import Annotated, Any

from peewee import Expression

from api.content.access import (
    find_open_member,
    media_clause,
    safesurf_clause,
    viewer_of,
    visible_to,
)
from api.content.groups import GroupRefused, add_docs, group_numbers, membership, remove_docs
from api.content.listing import owned_docs
from api.content.trees import (
    DEFAULT_THUMBSIZE,
    context_item,
    doc_trees,
    owner_tree,
    parse_extra,
    parse_thumbsize,
    thumbs_by_doc,
)
from api.core.context import Call
from api.core.errors import method_error
from api.core.paging import NUMBER_OF, Paging
from api.core.registry import MethodGroup
from api.methods.common import READ, WRITE, InvalidArgument, MediaFilter, extra_help, parse_ids
from api.methods.group.shared import GroupId, GroupNotFound, visible_group
from api.models.docs import Doc
from api.models.groups import Group, GroupDoc
from keys.db import db

group = MethodGroup()

PoolUserNotFound = method_error(2, "User not found", "The user ID is either invalid or the "
                                                     "account is closed/suspended.")
BadArgument = method_error(3, "Invalid argument", "One or many arguments have an invalid value.")
DocNotInGroup = method_error(4, "Document not found", "The document is not in this group's "
                                                      "pool, or you may not see it.")
NotAMember = method_error(3, "Not a member", "Only the group's members add documents to it.")

POOL_PAGE = Paging("documents", default=20, maximum=100, wording=NUMBER_OF)  # spec §10.1
POOL_EXTRAS = ("owner", "dates", "geo", "medias", "original")  # spec §10.3
CONTEXT_EXTRAS = ("owner",)
CONTEXT_DEFAULT, CONTEXT_MAX = 1, 50  # prev/next (not published; as album.docs.getContext)
MAX_DOCS = 100  # documents one group.docs.add or remove names at most

DocIds = Annotated[str, f"A doc id, or a comma list of at most {MAX_DOCS}."]
PoolUser = Annotated[str, "Only the documents of this member (id or username)."]
Safesurf = Annotated[int | None, "Highest safety level to show: 1 (default), 2 or 3."]
Thumbsize = Annotated[str, "Thumbnail size (75x by default)."]


def _doc_ids(raw: str) -> list[int]:
    """The requested ids, 1 to MAX_DOCS of them, or 2. Read before the write's transaction
    begins (the methods say ``atomic=False``): a huge list is refused at once, never while it
    holds the database's write lock."""
    ids = parse_ids(raw, limit=MAX_DOCS)
    if not ids:
        raise InvalidArgument(f"give 1 to {MAX_DOCS} doc ids")
    return ids


def _pool_total(call: Call, found: Group) -> int:
    """The pool's docs the caller may see."""
    return group_numbers([found.id], viewer_of(call))[found.id]["docs"]


@group.method("group.docs.add", title="Add one or many docs to a group", token=True, sign=True,
              post=True, perms=WRITE, missing=InvalidArgument, invalid=InvalidArgument,
              errors=(GroupNotFound, NotAMember), atomic=False,  # the ids are read first
              response='<group group_id total added skipped pending><doc doc_id added pending '
                       'error/></group>')
def docs_add(call: Call, group_id: GroupId, doc_id: DocIds) -> dict:
    """Put some of the caller's documents in a group they are a member of.

    In a moderated group a member's documents wait for a moderator (``pending="1"``); a
    moderator's or an admin's go straight in. A document already in the group (or waiting) is
    skipped with its state; another member's document is ``error="1"``. A private document may
    be added: the pool shows it to no one who may not see it. Not a member: code 3.
    """
    user = call.require_user()
    ids = _doc_ids(doc_id)
    with db.atomic():
        found = visible_group(call, group_id, locking=True)  # the group before the docs
        try:
            results = add_docs(found, membership(found, user), user, ids, call.now())
        except GroupRefused as refused:
            raise NotAMember(str(refused)) from None
    added = sum(r.added for r in results)
    return {"group": {"group_id": found.id, "total": _pool_total(call, found), "added": added,
                      "skipped": len(results) - added,
                      "pending": sum(r.pending for r in results),
                      "doc": [{"doc_id": r.doc_id, "added": r.added, "pending": r.pending,
                               "error": r.error} for r in results]}}


@group.method("group.docs.remove", title="Remove one or many docs from a group", token=True,
              sign=True, post=True, perms=WRITE, missing=InvalidArgument,
              invalid=InvalidArgument, errors=(GroupNotFound,),
              atomic=False,  # the ids are read first
              response='<group group_id total removed skipped><doc doc_id removed/></group>')
def docs_remove(call: Call, group_id: GroupId, doc_id: DocIds) -> dict:
    """Take documents out of a group's pool (or out of its moderation queue).

    A member takes out the documents they added; a moderator or an admin any. The others are
    skipped (``removed="0"``).
    """
    user = call.require_user()
    ids = _doc_ids(doc_id)
    with db.atomic():
        found = visible_group(call, group_id, locking=True)
        removed = remove_docs(found, membership(found, user), user, ids)
    return {"group": {"group_id": found.id, "total": _pool_total(call, found),
                      "removed": len(removed), "skipped": len(ids) - len(removed),
                      "doc": [{"doc_id": d, "removed": d in removed} for d in ids]}}


def _pool(call: Call, found: Group, *, user_id: str, media: str,
          safesurf: int | None) -> list[Expression]:
    """WHERE clauses for the pool's documents the caller may see (Doc joined to GroupDoc)."""
    viewer = viewer_of(call)
    where = [GroupDoc.group == found.id, GroupDoc.pending == False,  # noqa: E712
             visible_to(Doc, viewer), safesurf_clause(viewer, safesurf, BadArgument)]
    media_only = media_clause(media, BadArgument)
    if media_only is not None:
        where.append(media_only)
    if user_id.strip():
        member = find_open_member(user_id)
        if member is None:
            raise PoolUserNotFound(f"user {user_id!r}")
        where.append(Doc.owner == member.id)
    return where


def _pool_docs(where: list[Expression]) -> Any:
    """The pool's docs with their owners, newest in the pool first."""
    return owned_docs().join(GroupDoc, on=(GroupDoc.doc == Doc.id), src=Doc).where(*where)


@group.method("group.docs.getList", title="Return the list of documents in a group",
              safety=True, perms=READ, missing=GroupNotFound, invalid=BadArgument,
              errors=(PoolUserNotFound,), modified_at="1283378400",
              response='<group group_id><docs total page pages per_page count><doc doc_id '
                       'media license title safety><thumb/></doc></docs></group>')
def docs_get_list(call: Call, group_id: GroupId, user_id: PoolUser = "",
                  media: MediaFilter = "", safesurf: Safesurf = None,
                  extra: Annotated[str, extra_help(POOL_EXTRAS)] = "",
                  thumbsize: Thumbsize = DEFAULT_THUMBSIZE,
                  per_page: Annotated[int | None, POOL_PAGE.per_page_help] = None,
                  page: Annotated[int | None, POOL_PAGE.page_help] = None) -> dict:
    """Return the documents of a group's pool the caller may see, latest added first.

    Documents waiting for a moderator are not in the pool. A private, family or friends'
    document shows only to whom may see it (with a token granting doc:read), as everywhere.
    An unknown user_id is code 2; a bad media or safesurf code 3.
    """
    found = visible_group(call, group_id)
    slice_ = POOL_PAGE.page(page, per_page)
    query = _pool_docs(_pool(call, found, user_id=user_id, media=media, safesurf=safesurf))
    docs = list(slice_.apply(query.order_by(GroupDoc.added_at.desc(), GroupDoc.id.desc())))
    items = doc_trees(docs, call, parse_extra(extra, POOL_EXTRAS), parse_thumbsize(thumbsize))
    return {"group": {"group_id": found.id,
                      "docs": {**slice_.attrs(query.order_by().count(), len(items)),
                               "doc": items}}}


@group.method("group.docs.getContext", title="Get the document context in a group",
              perms=READ, missing=GroupNotFound, invalid=BadArgument,
              errors=(PoolUserNotFound, DocNotInGroup), modified_at="1283378400",
              response='<group group_id total thumbsize/><prev count><doc index="-1" …/></prev>'
                       '<doc index="0" …/><next count><doc index="1" …/></next>')
def docs_get_context(call: Call, group_id: GroupId,
                     doc_id: Annotated[int, "A document of the group's pool."],
                     user_id: PoolUser = "", media: MediaFilter = "",
                     safesurf: Safesurf = None,
                     prev: Annotated[int, f"Documents before it: {CONTEXT_DEFAULT} by default, "
                                          f"at most {CONTEXT_MAX}."] = CONTEXT_DEFAULT,
                     next: Annotated[int, f"Documents after it: {CONTEXT_DEFAULT} by default, "
                                          f"at most {CONTEXT_MAX}."] = CONTEXT_DEFAULT,
                     thumbsize: Thumbsize = DEFAULT_THUMBSIZE,
                     extra: Annotated[str, extra_help(CONTEXT_EXTRAS)] = "") -> dict:
    """Return a document of a group's pool with its neighbours in the pool's order (latest
    added first), among the documents the caller may see.

    ``prev`` are the ones added after it (shown before it), ``next`` those added before. A
    document not in the pool, or that the caller may not see, is code 4.
    """
    found = visible_group(call, group_id)
    if not (0 <= prev <= CONTEXT_MAX and 0 <= next <= CONTEXT_MAX):
        raise BadArgument(f"prev={prev} next={next}")
    where = _pool(call, found, user_id=user_id, media=media, safesurf=safesurf)
    here = _pool_docs([*where, Doc.id == doc_id]).first()
    if here is None:
        raise DocNotInGroup(f"doc {doc_id} not in group {group_id}")
    place = GroupDoc.get(GroupDoc.group == found.id, GroupDoc.doc == doc_id)
    at, entry = place.added_at, place.id
    later = (GroupDoc.added_at > at) | ((GroupDoc.added_at == at) & (GroupDoc.id > entry))
    earlier = (GroupDoc.added_at < at) | ((GroupDoc.added_at == at) & (GroupDoc.id < entry))
    before = list(_pool_docs([*where, later])
                  .order_by(GroupDoc.added_at, GroupDoc.id).limit(prev)) if prev else []
    after = list(_pool_docs([*where, earlier])
                 .order_by(GroupDoc.added_at.desc(), GroupDoc.id.desc())
                 .limit(next)) if next else []
    label = parse_thumbsize(thumbsize)
    thumbs = thumbs_by_doc([here, *before, *after])
    with_owner = "owner" in parse_extra(extra, CONTEXT_EXTRAS)

    def item(doc: Doc, index: int) -> dict[str, Any]:
        tree = context_item(call, doc, thumbs.get(doc.id, []), label, index,
                            f"{call.base_url}/doc/{doc.owner_id}/{doc.id}/in/group/{found.id}")
        if with_owner:
            tree["owner"] = owner_tree(doc.owner)
        return tree

    total = _pool_docs(where).order_by().count()
    return {"group": {"group_id": found.id, "total": total, "thumbsize": label},
            "prev": {"count": len(before),
                     "doc": [item(d, -i) for i, d in enumerate(before, 1)]},
            "doc": item(here, 0),
            "next": {"count": len(after),
                     "doc": [item(d, i) for i, d in enumerate(after, 1)]}}
