"""The ``doc.*`` family: reading, listing, searching and editing documents (spec §9, §10).

Tags, notes, comments, containers and album membership live in their own modules. Choices (search
semantics, safesurf defaults, what a visit is) are written down in docs/documents.md.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

from peewee import JOIN, Expression, fn

from api.content.access import (
    find_user,
    media_clause,
    owned_doc,
    parse_choices,
    perm_allows,
    relation_to,
    safesurf_clause,
    share_clause,
    viewer_of,
    visible_doc,
    visible_to,
)
from api.content.tags import parse_keywords
from api.content.trees import (
    context_item,
    dates_tree,
    display_name,
    doc_trees,
    geo_tree,
    may_download,
    medias_tree,
    member_tree,
    note_tree,
    original_tree,
    parse_extra,
    parse_thumbsize,
    sorted_thumbs,
    tag_tree,
    thumb_tree,
    thumbs_by_doc,
)
from api.content.visits import record_visit
from api.core.context import Call
from api.core.errors import method_error
from api.core.paging import Page, paging
from api.core.registry import MethodGroup
from api.formats.tree import Text
from api.media.names import ORIGINAL, media_path
from api.methods.common import READ, WRITE, DocNotFound, InvalidArgument, UserNotFound
from api.models.docs import (
    NO_DATE,
    Album,
    AlbumDoc,
    Comment,
    Doc,
    DocVisit,
    Note,
    Relation,
    Tag,
    Thumb,
)
from keys.db import db
from keys.models import User

group = MethodGroup()


SearchAlbumNotFound = method_error(2, "Album not found", "The album ID is invalid or insufficient "
                                                         "permissions to view this album.")
SearchInvalidArgument = method_error(3, "Invalid argument", "An argument has an invalid value "
                                                            "(enumeration, date, tags, dist).")
MD5Invalid = method_error(1, "Invalid md5 list", "md5 is missing, or holds more than 20 values.")

LICENSES = (0, 1, 3, 5, 7, 9, 11, 255)  # spec §10.4
PERM_LEVELS = (0, 1, 2, 3, 4, 5)  # spec §10.4
ROTATION = {1: 0, 3: 180, 6: 90, 8: 270}  # EXIF orientation → degrees clockwise
MAX_TAGS = 20
MAX_MD5 = 20
MAX_CONTEXT = 50
DEFAULT_DIST, MAX_DIST = 5000, 30000  # metres (§10.4)
METRES_PER_DEGREE = 111_195.0  # mean Earth radius × π/180
CREATED = re.compile(r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2})?$")
NEWEST_FIRST = (Doc.posted_at.desc(), Doc.id.desc())

GET_EXTRAS = ("tags", "notes", "geo", "md5")
LIST_EXTRAS = ("dates", "count", "geo", "medias", "original", "md5")
SEARCH_EXTRAS = ("owner", "dates", "count", "license", "medias", "geo", "original")
EXTRA_HELP = "A comma-separated list of extra information to fetch: "
PAGING_HELP = {"per_page": "Number of documents per page (default 20, max 100).",
               "page": "The page of results to return (default 1)."}
THUMBSIZE_HELP = "Thumbnail size: 75x (default), 100, 240, 250x, 500, 560, 640, 800, 1024 …"
SAFESURF_HELP = "Maximum safety level: 1 (default), 2, 3 (3 needs an authenticated caller)."


# -- doc.get -------------------------------------------------------------------------------------

@group.method("doc.get", title="Get details about document.", perms=READ, missing=DocNotFound,
              invalid=DocNotFound, errors=(DocNotFound,),
              params={"doc_id": "The document ID.", "extra": EXTRA_HELP + ", ".join(GET_EXTRAS)},
              response="<doc doc_id media license title …><owner/><thumbs>…</thumbs></doc>")
def get(call: Call, doc_id: int, extra: str = "") -> dict:
    """Return a document's details; an authenticated view by another member counts as a visit."""
    doc = visible_doc(call, doc_id, DocNotFound)
    extras = parse_extra(extra, GET_EXTRAS)
    visit = record_visit(call, doc, DocVisit, "doc")
    viewer = viewer_of(call) or call.user
    relation = relation_to(doc.owner_id, viewer)
    tree: dict[str, Any] = {
        "doc_id": doc.id, "media": doc.media, "license": doc.license,
        "rotation": ROTATION.get(doc.orientation, 0), "title": doc.title, "safety": doc.safety,
        "link": doc_link(call, doc),
        "md5": doc.md5 if "md5" in extras else None,
        "owner": member_tree(call, doc.owner),
        "description": Text(doc.description),
        "dates": doc_dates(doc),
        "visibility": visibility_tree(doc),
        "permissions": permissions_tree(doc),
        "count": count_tree(doc),
        "can": can_tree(call, doc, viewer, relation),
        "you": you_tree(visit) if call.user else None,
        **medias_trees(call, doc),
        "geo": geo_tree(doc) if "geo" in extras else None,
        "tags": tags_tree(doc) if "tags" in extras else None,
        "notes": notes_tree(doc) if "notes" in extras else None,
    }
    return {"doc": tree}


def doc_link(call: Call, doc: Doc) -> str:
    """The doc's web page, ``/doc/<username>/<doc_id>`` as on the original."""
    return f"{call.base_url}/doc/{doc.owner.username}/{doc.id}"


def doc_dates(doc: Doc) -> dict[str, Any]:
    """``<dates …/>`` of doc.get: the list extra's, the last comment's time (``comment_at``, and
    ``last_comment_at`` as live clients read it) and ``last_update_at`` (= ``modified_at``)."""
    last = (Comment.select(fn.MAX(Comment.posted_at)).where(Comment.doc == doc.id).scalar()) or 0
    return {**dates_tree(doc), "comment_at": last, "last_comment_at": last,
            "last_update_at": doc.modified_at}


def visibility_tree(doc: Doc) -> dict[str, Any]:
    """``<visibility ispublic isfriend isfamily share/>``, plus ``isfriends`` (album.edit's
    spelling, which a live client reads on doc.get too)."""
    return {"ispublic": doc.is_public, "isfriend": doc.is_friend, "isfamily": doc.is_family,
            "share": doc.share, "isfriends": doc.is_friend}


def permissions_tree(doc: Doc) -> dict[str, Any]:
    """``<permissions comment tag tagme/>``: who may comment, tag, tag themselves (§10.4)."""
    return {"comment": doc.perm_comment, "tag": doc.perm_tag, "tagme": doc.perm_tagme}


def you_tree(visit: DocVisit | None) -> dict[str, Any]:
    """``<you isfave visits last_visit/>``, plus ``last_visit_at`` (the same time) that live
    clients read."""
    last = visit.visited_at if visit else 0
    return {"isfave": 0, "visits": visit.visits if visit else 0, "last_visit": last,
            "last_visit_at": last}


def count_tree(doc: Doc) -> dict[str, Any]:
    """``<count …/>`` of doc.get: stored counters plus counted notes, tags and albums."""
    last = (DocVisit.select(fn.MAX(DocVisit.visited_at)).where(DocVisit.doc == doc.id).scalar())
    return {"visits": doc.visits, "faves": doc.faves, "comments": doc.comments,
            "notes": Note.select().where(Note.doc == doc.id).count(),
            "tags": Tag.select().where(Tag.doc == doc.id).count(),
            "albums": AlbumDoc.select().where(AlbumDoc.doc == doc.id).count(),
            "groups": 0, "last_visit": last or 0}


def can_tree(call: Call, doc: Doc, viewer: User | None,
             relation: Relation | None) -> dict[str, Any]:
    """``<can …/>``: what the caller may do with this doc under its perm_* settings."""
    def allows(level: int) -> bool:
        return perm_allows(level, viewer, doc.owner_id, relation)

    return {"fave": viewer is not None and viewer.id != doc.owner_id,
            "comment": allows(doc.perm_comment), "tag": allows(doc.perm_tag),
            "tagme": allows(doc.perm_tagme), "zoom": True,
            "download": may_download(call, doc), "print": False}


def medias_trees(call: Call, doc: Doc) -> dict[str, Any]:
    """``<thumbs>`` with every label, ``<medias>`` for video and audio, and ``<original>``."""
    thumbs = sorted_thumbs(thumbs_by_doc([doc]).get(doc.id, []))
    return {"thumbs": {"thumb": [thumb_tree(call, doc, t) for t in thumbs]},
            "medias": medias_tree(doc) if doc.media in ("video", "audio") else None,
            "original": original_tree(call, doc)}


def tags_tree(doc: Doc) -> dict[str, Any]:
    """``<tags total><tag tag_id type id user_id tag keyword|member_id title/></tags>``: the
    example's attributes and doc.tags.getList's (``id``, ``tag``), which live clients read."""
    member = User.alias()
    rows = list(Tag.select(Tag, member)
                .join(member, JOIN.LEFT_OUTER, on=(Tag.member == member.id))
                .where(Tag.doc == doc.id)
                .order_by(Tag.id))
    return {"total": len(rows), "tag": [_tag_item(doc, tag) for tag in rows]}


def _tag_item(doc: Doc, tag: Tag) -> dict[str, Any]:
    item: dict[str, Any] = {"tag_id": tag.id, **tag_tree(tag, doc)}
    if tag.type == "member" and tag.member_id:
        item.update(member_id=tag.member_id, title=display_name(tag.member))
    else:
        item.update(keyword=tag.norm, title=tag.tag)
    return item


def notes_tree(doc: Doc) -> dict[str, Any]:
    """``<notes total><note note_id user_id username … x y w h content>text</note></notes>``:
    authors and named members joined, one query."""
    member = User.alias()
    rows = list(Note.select(Note, User, member)
                .join(User, on=(Note.author == User.id))
                .switch(Note)
                .join(member, JOIN.LEFT_OUTER, on=(Note.member == member.id))
                .where(Note.doc == doc.id)
                .order_by(Note.id))
    return {"total": len(rows), "note": [note_tree(n, username=n.author.username) for n in rows]}


# -- lists ---------------------------------------------------------------------------------------

def list_page(call: Call, where: Sequence[Expression], order: Sequence[Any], page: Page,
              extras: set[str], thumbsize: str) -> dict:
    """``<docs total page pages per_page count><doc/>…</docs>`` in three queries at any size."""
    total = Doc.select().where(*where).count()
    docs = list(page.apply(Doc.select(Doc, User)
                           .join(User, on=(Doc.owner == User.id))
                           .where(*where)
                           .order_by(*order)))
    items = doc_trees(docs, call, extras, thumbsize)
    return {"docs": {**page.attrs(total, len(items)), "doc": items}}


def _present(*clauses: Expression | None) -> list[Expression]:
    return [c for c in clauses if c is not None]


@group.method("doc.getList", title="Return the member's list of documents", safety=True,
              missing=UserNotFound, invalid=InvalidArgument,
              errors=(UserNotFound, InvalidArgument),
              params={"user_id": "The member's ID or web alias; defaults to the authenticated "
                                 "user (the token's).",
                      "media": "photo, video, audio or other (a comma list is accepted).",
                      "share": "Only docs at this share level: 0 private … 4 public.",
                      "safesurf": SAFESURF_HELP,
                      "extra": EXTRA_HELP + ", ".join(LIST_EXTRAS),
                      "thumbsize": THUMBSIZE_HELP, **PAGING_HELP},
              response='<docs total="12" per_page="20" page="1" pages="1"><doc …/></docs>')
def get_list(call: Call, user_id: str = "", media: str = "", share: int | None = None,
             safesurf: int | None = None, extra: str = "", thumbsize: str = "",
             per_page: int | None = None, page: int | None = None) -> dict:
    """Return a member's documents the caller may see, newest first."""
    user = find_user(user_id) if user_id else call.user
    if user is None:
        raise UserNotFound(user_id or "missing parameter user_id")
    viewer = viewer_of(call)
    where = _present(Doc.owner == user.id, visible_to(Doc, viewer),
                     safesurf_clause(viewer, safesurf, InvalidArgument),
                     media_clause(media, InvalidArgument), share_clause(share, InvalidArgument))
    return list_page(call, where, NEWEST_FIRST, paging(page, per_page, default=20, maximum=100),
                     parse_extra(extra, LIST_EXTRAS), parse_thumbsize(thumbsize))


@group.method("doc.search", title="Search for documents.", safety=True, perms=READ,
              invalid=SearchInvalidArgument,
              errors=(UserNotFound, SearchAlbumNotFound, SearchInvalidArgument),
              params={"user_id": "Only this member's docs (ID or web alias).",
                      "media": "photo, video, audio, other, or a comma list of them.",
                      "share": "Only docs at this share level: 0 private … 4 public.",
                      "safesurf": SAFESURF_HELP,
                      "text": "Words that must all appear in the title, description or tags.",
                      "tags": "Up to 20 comma-separated keywords; a doc must carry all of them.",
                      "album_id": "Only docs in this album.",
                      "group_id": "Only docs in this group (no groups exist yet: no results).",
                      "license": "A licence code or a comma list of them (0,1,3,5,7,9,11,255).",
                      "posted_min": "Posted at or after (UNIX time).",
                      "posted_max": "Posted at or before (UNIX time).",
                      "created_min": "Created at or after (YYYY-MM-DD HH:MM:SS).",
                      "created_max": "Created at or before (YYYY-MM-DD HH:MM:SS).",
                      "lat": "Latitude of the centre of a radius search.",
                      "lng": "Longitude of the centre of a radius search.",
                      "dist": "Radius in metres (default 5000, max 30000).",
                      "sort": "relevance (default), popular, posted-desc, posted-asc, "
                              "created-desc or created-asc.",
                      "extra": EXTRA_HELP + ", ".join(SEARCH_EXTRAS),
                      "thumbsize": THUMBSIZE_HELP, **PAGING_HELP},
              response='<docs page="1" total="51258" pages="2563" per_page="20">'
                       '<doc doc_id title license><owner user_id/><thumb/></doc></docs>')
def search(call: Call, user_id: str = "", media: str = "", share: int | None = None,
           safesurf: int | None = None, text: str = "", tags: str = "",
           album_id: int | None = None, group_id: int | None = None, license: str = "",
           posted_min: int | None = None, posted_max: int | None = None,
           created_min: str = "", created_max: str = "", lat: float | None = None,
           lng: float | None = None, dist: int | None = None, sort: str = "relevance",
           extra: str = "", thumbsize: str = "", per_page: int | None = None,
           page: int | None = None) -> dict:
    """Search the docs the caller may see; every criterion given must hold (docs/documents.md)."""
    viewer = viewer_of(call)
    bad = SearchInvalidArgument
    where = _present(visible_to(Doc, viewer), safesurf_clause(viewer, safesurf, bad),
                     media_clause(media, bad), share_clause(share, bad),
                     _owner_clause(user_id), _album_clause(call, album_id),
                     _license_clause(license), _text_clause(text), _tags_clause(tags),
                     Doc.posted_at >= posted_min if posted_min is not None else None,
                     Doc.posted_at <= posted_max if posted_max is not None else None,
                     _created_clause(created_min, " 00:00:00", Doc.created.__ge__),
                     _created_clause(created_max, " 23:59:59", Doc.created.__le__))
    if group_id is not None:
        where.append(Doc.id.in_([]))  # groups do not exist yet, so no doc is in one
    geo = _geo(lat, lng, dist)
    if geo is not None:
        where.extend(geo[0])
    order = _search_order(sort, geo[1] if geo else None)
    extras = parse_extra(extra, SEARCH_EXTRAS) | {"owner"}  # the owner is in every result
    return list_page(call, where, order, paging(page, per_page, default=20, maximum=100),
                     extras, parse_thumbsize(thumbsize))


def _owner_clause(user_id: str) -> Expression | None:
    if not user_id:
        return None
    user = find_user(user_id)
    if user is None:
        raise UserNotFound(user_id)
    return Doc.owner == user.id


def _album_clause(call: Call, album_id: int | None) -> Expression | None:
    if album_id is None:
        return None
    visible = Album.select().where(Album.id == album_id, visible_to(Album, viewer_of(call)))
    if not visible.exists():
        raise SearchAlbumNotFound(f"album {album_id}")
    return Doc.id.in_(AlbumDoc.select(AlbumDoc.doc).where(AlbumDoc.album == album_id))


def _license_clause(license: str) -> Expression | None:
    if not license:
        return None
    return Doc.license.in_(parse_choices(license, LICENSES, int, SearchInvalidArgument))


def _text_clause(text: str) -> Expression | None:
    """Every word must be in the title, the description or a keyword tag (case-insensitive)."""
    clause = None
    for word in text.split()[:MAX_TAGS]:
        tagged = Tag.select(Tag.doc).where(Tag.norm == word.lower(), Tag.type == "keyword")
        match = Doc.title.contains(word) | Doc.description.contains(word) | Doc.id.in_(tagged)
        clause = match if clause is None else clause & match
    return clause


def _tags_clause(tags: str) -> Expression | None:
    """Docs carrying every keyword of the list (indexed on the normalised tag)."""
    keywords = [keyword.lower() for keyword in parse_keywords(tags)]
    if not keywords:
        return None
    if len(keywords) > MAX_TAGS:
        raise SearchInvalidArgument(f"{len(keywords)} tags")
    carrying = (Tag.select(Tag.doc)
                .where(Tag.type == "keyword", Tag.norm.in_(keywords))
                .group_by(Tag.doc)
                .having(fn.COUNT(fn.DISTINCT(Tag.norm)) == len(keywords)))
    return Doc.id.in_(carrying)


def _created_clause(value: str, pad: str, compare: Any) -> Expression | None:
    """``created_min``/``created_max``: a date alone covers the whole day; a document whose date
    is unknown (``NO_DATE``, which sorts before every real date) matches neither bound."""
    if not value:
        return None
    value = value.strip()
    if not CREATED.match(value):
        raise SearchInvalidArgument(f"created={value}")
    return compare(value if len(value) > 10 else value + pad) & (Doc.created != NO_DATE)


def _geo(lat: float | None, lng: float | None,
         dist: int | None) -> tuple[list[Expression], Expression] | None:
    """A radius search: a bounding box the (lat, lng) index serves, then the exact circle.

    Within 30 km an equirectangular distance is exact to well under a metre, and it needs only
    arithmetic, which SQLite and PostgreSQL both have.
    """
    if lat is None and lng is None:
        if dist is not None:
            raise SearchInvalidArgument("dist without lat/lng")
        return None
    if lat is None or lng is None or not (-90 <= lat <= 90 and -180 <= lng <= 180):
        raise SearchInvalidArgument(f"lat={lat} lng={lng}")
    dist = DEFAULT_DIST if dist is None else dist
    if not 0 < dist <= MAX_DIST:
        raise SearchInvalidArgument(f"dist={dist}")
    dlat = dist / METRES_PER_DEGREE
    scale = max(math.cos(math.radians(lat)), 1e-6)
    dlng = dlat / scale
    dy, dx = Doc.lat - lat, (Doc.lng - lng) * scale
    squared = dy * dy + dx * dx
    return ([Doc.lat.between(lat - dlat, lat + dlat), Doc.lng.between(lng - dlng, lng + dlng),
             squared <= dlat * dlat], squared)


SORTS: dict[str, tuple[Any, ...]] = {
    "popular": (Doc.faves.desc(), Doc.visits.desc(), Doc.id.desc()),
    "posted-desc": NEWEST_FIRST,
    "posted-asc": (Doc.posted_at.asc(), Doc.id.asc()),
    "created-desc": (Doc.created.desc(), Doc.id.desc()),
    "created-asc": (Doc.created.asc(), Doc.id.asc()),
}


def _search_order(sort: str, distance: Expression | None) -> Sequence[Any]:
    """Sort orders of §10.4; relevance is nearest first for a place search, else newest first."""
    sort = (sort or "relevance").strip().lower()
    if sort == "relevance":
        return (distance.asc(), Doc.id.desc()) if distance is not None else NEWEST_FIRST
    if sort not in SORTS:
        raise SearchInvalidArgument(f"sort={sort}")
    return SORTS[sort]


# -- editing -------------------------------------------------------------------------------------

@group.method("doc.set", title="Edit a document title and description.", token=True, sign=True,
              post=True, safety=True, perms=WRITE, missing=DocNotFound, invalid=DocNotFound,
              errors=(DocNotFound, InvalidArgument),
              params={"doc_id": "The document ID.", "title": "The new title (max 255).",
                      "description": "The new description."},
              response='<doc doc_id="12345" title="A new title" share="0">'
                       '<description>Well...</description></doc>')
def set_(call: Call, doc_id: int, title: str | None = None,
         description: str | None = None) -> dict:
    """Change the title and/or description of one of the caller's documents."""
    doc = owned_doc(call, doc_id, DocNotFound)
    if title is not None and len(title) > 255:
        raise InvalidArgument("title longer than 255")
    changes = {k: v for k, v in (("title", title), ("description", description)) if v is not None}
    _save(call, doc, **changes)
    return {"doc": {"doc_id": doc.id, "title": doc.title, "share": doc.share,
                    "description": Text(doc.description)}}


def _save(call: Call, doc: Doc, **changes: Any) -> None:
    """Write changed fields of the caller's doc, stamping modified_at."""
    for name, value in changes.items():
        setattr(doc, name, value)
    doc.modified_at = call.now()
    with db.atomic():
        doc.save(only=[getattr(Doc, name) for name in changes] + [Doc.modified_at])


@group.method("doc.setPerms", title="Set permissions for a document.", token=True, sign=True,
              post=True, perms=WRITE, missing=InvalidArgument, invalid=InvalidArgument,
              errors=(DocNotFound, InvalidArgument),
              params={"doc_id": "The document ID.", "is_public": "1 public, 0 not.",
                      "is_family": "1 visible to family.", "is_friend": "1 visible to friends.",
                      "share": "0 private, 1 family, 2 friends, 3 friends & family, 4 public "
                               "(overrides is_*).",
                      "perm_comment": "Who may comment: 0 only you … 4 contacts, 5 everybody.",
                      "perm_tag": "Who may tag: 0 only you … 4 contacts, 5 everybody.",
                      "perm_tagme": "Who may tag themselves: 0 only you … 5 everybody."})
def set_perms(call: Call, doc_id: int, is_public: bool | None = None,
              is_family: bool | None = None, is_friend: bool | None = None,
              share: int | None = None, perm_comment: int | None = None,
              perm_tag: int | None = None, perm_tagme: int | None = None) -> dict:
    """Change who may see a document and who may comment or tag it."""
    doc = owned_doc(call, doc_id, DocNotFound)
    changes: dict[str, Any] = {k: v for k, v in (("is_public", is_public),
                                                 ("is_family", is_family),
                                                 ("is_friend", is_friend)) if v is not None}
    if share is not None:
        if share not in (0, 1, 2, 3, 4):
            raise InvalidArgument(f"share={share}")
        changes.update(is_public=share == 4, is_family=bool(share & 1) and share != 4,
                       is_friend=bool(share & 2) and share != 4)
    for name, level in (("perm_comment", perm_comment), ("perm_tag", perm_tag),
                        ("perm_tagme", perm_tagme)):
        if level is not None:
            if level not in PERM_LEVELS:
                raise InvalidArgument(f"{name}={level}")
            changes[name] = level
    _save(call, doc, **changes)
    return {}


@group.method("doc.getPerms", title="Return permissions for a document.", token=True, sign=True,
              perms=READ, missing=DocNotFound, invalid=DocNotFound, errors=(DocNotFound,),
              params={"doc_id": "The document ID (one of the caller's own)."},
              response='<visibility ispublic="1" isfriend="0" isfamily="0"/>'
                       '<permissions permcomment="3" permtag="3" permtagme="3" comment="3" '
                       'tag="3" tagme="3"/><usage canfave="0" …/><can fave="0" …/>')
def get_perms(call: Call, doc_id: int) -> dict:
    """Return the sharing and permission settings of one of the caller's documents.

    ``permissions`` carries the example's ``perm*`` names and doc.get's (``comment`` …), and
    ``can`` is doc.get's ``<can/>``, of which ``usage`` is the ``can*`` spelling: live clients
    read the doc.get names here.
    """
    doc = owned_doc(call, doc_id, DocNotFound)
    levels = permissions_tree(doc)
    can = can_tree(call, doc, call.user, None)
    return {"visibility": {"ispublic": doc.is_public, "isfriend": doc.is_friend,
                           "isfamily": doc.is_family},
            "permissions": {**{"perm" + name: level for name, level in levels.items()},
                            **levels},
            "usage": {"can" + name: allowed for name, allowed in can.items()},
            "can": can}


@group.method("doc.setLicense", title="Set the license for a document.", token=True, sign=True,
              post=True, perms=WRITE, missing=InvalidArgument, invalid=InvalidArgument,
              errors=(DocNotFound, InvalidArgument),
              params={"doc_id": "The document ID.",
                      "license": "0, 1, 3, 5, 7, 9, 11 or 255 (spec §10.4)."})
def set_license(call: Call, doc_id: int, license: int) -> dict:
    """Set the licence under which a document is shared."""
    doc = owned_doc(call, doc_id, DocNotFound)
    if license not in LICENSES:
        raise InvalidArgument(f"license={license}")
    _save(call, doc, license=license)
    return {}


@group.method("doc.setGeo", title="Set longitude and latitude of a document.", token=True,
              sign=True, post=True, perms=WRITE, missing=DocNotFound, invalid=InvalidArgument,
              errors=(DocNotFound, InvalidArgument),
              params={"doc_id": "The document ID.",
                      "lng": "Longitude, -180..180; both absent or -999 removes the place.",
                      "lat": "Latitude, -90..90; both absent or -999 removes the place."})
def set_geo(call: Call, doc_id: int, lng: float | None = None, lat: float | None = None) -> dict:
    """Place a document on the map, or take it off (no coordinates, or -999 as upload.file)."""
    doc = owned_doc(call, doc_id, DocNotFound)
    lat, lng = (None if v == -999 else v for v in (lat, lng))
    if (lat is None) != (lng is None):
        raise InvalidArgument("lat and lng go together")
    if lat is not None and not (-90 <= lat <= 90 and -180 <= lng <= 180):
        raise InvalidArgument(f"lat={lat} lng={lng}")
    _save(call, doc, lat=lat, lng=lng)
    return {}


@group.method("doc.setSafety", title="Set the safety for a document.", token=True, sign=True,
              post=True, perms=WRITE, missing=InvalidArgument, invalid=InvalidArgument,
              errors=(DocNotFound, InvalidArgument),
              params={"doc_id": "The document ID.",
                      "safety": "1 all audiences, 2 not for all audiences, 3 adults only."})
def set_safety(call: Call, doc_id: int, safety: int) -> dict:
    """Set who a document is suitable for; lists filter on it through safesurf."""
    doc = owned_doc(call, doc_id, DocNotFound)
    if safety not in (1, 2, 3):
        raise InvalidArgument(f"safety={safety}")
    _save(call, doc, safety=safety)
    return {}


@group.method("doc.delete", title="Delete a document.", token=True, sign=True, post=True,
              perms={"doc": "delete"}, missing=DocNotFound, invalid=DocNotFound,
              errors=(DocNotFound,), params={"doc_id": "The document ID."},
              atomic=False)  # its own transaction: the files go only once the rows are gone
def delete(call: Call, doc_id: int) -> dict:
    """Delete one of the caller's documents with everything hanging off it, and its files."""
    with db.atomic():
        doc = owned_doc(call, doc_id, DocNotFound)
        names = stored_names(doc, list(Thumb.select().where(Thumb.doc == doc.id)))
        Album.update(cover=None).where(Album.cover == doc.id).execute()
        doc.delete_instance(recursive=True)
    remove_files(call, names)  # after the commit: a failure leaves orphan files, never lost rows
    return {}


def stored_names(doc: Doc, thumbs: Sequence[Thumb]) -> list[str]:
    """The storage names of a doc's thumbnails and original: media paths without ``/media/``."""
    paths = [media_path(doc.id, doc.secret, t.label, t.ext) for t in thumbs]
    if doc.original_ext:
        paths.append(media_path(doc.id, doc.original_secret, ORIGINAL, doc.original_ext))
    return [path.removeprefix("/media/") for path in paths]


def remove_files(call: Call, names: Sequence[str]) -> None:
    """Delete stored files through the storage service; without one, nothing was stored."""
    storage = call.ctx.services.get("storage")
    if storage is None:
        return
    for name in names:
        storage.delete(name)


# -- media, exif, context -----------------------------------------------------------------------

@group.method("doc.getMedias", title="Get document media urls (thumbs, medias, original,...).",
              perms=READ, missing=DocNotFound, invalid=DocNotFound, errors=(DocNotFound,),
              params={"doc_id": "The document ID."},
              response="<thumbs><thumb label w h url/>…</thumbs><medias/><original/>")
def get_medias(call: Call, doc_id: int) -> dict:
    """Return the URLs of a document's thumbnails, media renditions and original."""
    return medias_trees(call, visible_doc(call, doc_id, DocNotFound))


@group.method("doc.getExif", title="Return the meta information for a document (EXIF/ID3/...).",
              perms=READ, missing=DocNotFound, invalid=DocNotFound, errors=(DocNotFound,),
              params={"doc_id": "The document ID."},
              response='<exif doc_id="12345" total="2"><tag name="Make" value="Canon"/>…</exif>')
def get_exif(call: Call, doc_id: int) -> dict:
    """Return the metadata read from a document's file, one ``tag`` per field."""
    doc = visible_doc(call, doc_id, DocNotFound)
    try:
        fields = json.loads(doc.exif) if doc.exif else {}
    except ValueError:
        fields = {}
    tags = [{"name": str(k), "value": v if isinstance(v, str) else json.dumps(v)}
            for k, v in (fields.items() if isinstance(fields, dict) else ())]
    return {"exif": {"doc_id": doc.id, "total": len(tags), "tag": tags}}


@group.method("doc.getContext", title="Get the document context in docstream", perms=READ,
              missing=DocNotFound, invalid=InvalidArgument, errors=(DocNotFound, InvalidArgument),
              params={"doc_id": "The document ID.",
                      "media": "Only docs of this media type (a comma list is accepted).",
                      "safesurf": SAFESURF_HELP,
                      "prev": f"How many earlier docs (default 1, max {MAX_CONTEXT}).",
                      "next": f"How many later docs (default 1, max {MAX_CONTEXT}).",
                      "thumbsize": THUMBSIZE_HELP},
              response='<prev count><doc index="-1" …/></prev><doc index="0" …/>'
                       '<next count><doc index="1" …/></next>')
def get_context(call: Call, doc_id: int, media: str = "", safesurf: int | None = None,
                prev: int = 1, next: int = 1, thumbsize: str = "") -> dict:
    """Return the docs posted just before and after a doc in its owner's stream."""
    doc = visible_doc(call, doc_id, DocNotFound)
    if not (0 <= prev <= MAX_CONTEXT and 0 <= next <= MAX_CONTEXT):
        raise InvalidArgument(f"prev={prev} next={next}")
    viewer = viewer_of(call)
    stream = _present(Doc.owner == doc.owner_id, visible_to(Doc, viewer),
                      safesurf_clause(viewer, safesurf, InvalidArgument),
                      media_clause(media, InvalidArgument))
    earlier = (Doc.posted_at < doc.posted_at) | ((Doc.posted_at == doc.posted_at)
                                                 & (Doc.id < doc.id))
    later = (Doc.posted_at > doc.posted_at) | ((Doc.posted_at == doc.posted_at)
                                               & (Doc.id > doc.id))
    before = list(Doc.select().where(*stream, earlier).order_by(*NEWEST_FIRST).limit(prev))
    after = list(Doc.select().where(*stream, later)
                 .order_by(Doc.posted_at.asc(), Doc.id.asc()).limit(next))
    label = parse_thumbsize(thumbsize)
    thumbs = thumbs_by_doc([doc, *before, *after])

    def item(row: Doc, index: int) -> dict[str, Any]:
        return context_item(call, row, thumbs.get(row.id, []), label, index,
                            f"{call.base_url}/doc/{doc.owner.username}/{row.id}")

    return {"prev": {"count": len(before), "doc": [item(d, -i) for i, d in enumerate(before, 1)]},
            "doc": item(doc, 0),
            "next": {"count": len(after), "doc": [item(d, i) for i, d in enumerate(after, 1)]}}


# -- the caller's stream -------------------------------------------------------------------------

@group.method("doc.checkMD5", title="Check if a doc exists in your stream using MD5.",
              token=True, sign=True, perms=READ, missing=MD5Invalid, errors=(MD5Invalid,),
              params={"md5": "An md5 or a comma-separated list of up to 20."},
              response='<docs count="5" found="2"><doc md5 doc_id found="1"/></docs>')
def check_md5(call: Call, md5: str) -> dict:
    """Tell which of the given file MD5s are already in the caller's stream (upload de-dup).

    Only found docs are listed (the method's note: an md5 not found gives no entry), so a client
    can call doc.get on every ``doc_id``; ``count`` is still how many md5s were checked.
    """
    sums = list(dict.fromkeys(s.strip().lower() for s in md5.split(",") if s.strip()))
    if not sums or len(sums) > MAX_MD5:
        raise MD5Invalid(f"{len(sums)} md5")
    found: dict[str, int] = {}
    for row in (Doc.select(Doc.id, Doc.md5)
                .where(Doc.owner == call.user.id, Doc.md5.in_(sums))
                .order_by(Doc.id)):
        found.setdefault(row.md5, row.id)
    items = [{"md5": s, "doc_id": found[s], "found": True} for s in sums if s in found]
    return {"docs": {"count": len(sums), "found": len(found), "doc": items}}


@group.method("doc.getVisitors", title="Return the document latest visitors.", token=True,
              sign=True, perms=READ, missing=DocNotFound, invalid=DocNotFound,
              errors=(DocNotFound,),
              params={"doc_id": "The document ID (one of the caller's own).",
                      "per_page": "Number of visitors per page (default 10, max 100).",
                      "page": "The page of results to return (default 1)."},
              response='<visits count per_page pages page total>'
                       '<visit user_id username visited_at first_visit_at visits/></visits>')
def get_visitors(call: Call, doc_id: int, per_page: int | None = None,
                 page: int | None = None) -> dict:
    """Return the members who viewed one of the caller's documents, latest first."""
    doc = owned_doc(call, doc_id, DocNotFound)
    slice_ = paging(page, per_page, default=10, maximum=100)
    total = DocVisit.select().where(DocVisit.doc == doc.id).count()
    rows = list(slice_.apply(DocVisit.select(DocVisit, User)
                             .join(User, on=(DocVisit.visitor == User.id))
                             .where(DocVisit.doc == doc.id)
                             .order_by(DocVisit.visited_at.desc(), DocVisit.id.desc())))
    visits = [{"user_id": v.visitor_id, "username": v.visitor.username,
               "visited_at": v.visited_at, "first_visit_at": v.first_visit_at,
               "visits": v.visits} for v in rows]
    return {"visits": {**slice_.attrs(total, len(visits)), "visit": visits}}


