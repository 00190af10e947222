"""``doc.getList``, ``doc.search``, ``doc.getContext``, ``doc.checkMD5``: lists of documents and
a doc's place in its owner's stream (spec §9, §10). Search semantics and safesurf defaults are
written down in docs/documents.md.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Sequence
from functools import reduce
from typing import Annotated, Any

from peewee import SQL, Expression, PostgresqlDatabase, fn

from api.content.access import (
    find_open_member,
    media_clause,
    parse_choices,
    safesurf_clause,
    share_clause,
    viewer_of,
    visible_doc,
    visible_to,
)
from api.content.licenses import LICENSE_CODES, codes_listed
from api.content.listing import owned_docs
from api.content.tags import parse_keywords
from api.content.trees import context_item, doc_trees, parse_extra, parse_thumbsize, thumbs_by_doc
from api.core.context import Call
from api.core.errors import method_error
from api.core.paging import NUMBER_OF, Page, Paging
from api.core.registry import MethodGroup
from api.methods.common import (
    READ,
    DocNotFound,
    InvalidArgument,
    MediaFilter,
    Safesurf,
    Thumbsize,
    UserNotFound,
    extra_help,
)
from api.methods.doc.shared import DocId
from api.models.docs import NO_DATE, Album, AlbumDoc, Doc, Tag
from api.models.search import keywords_match, text_match, unindexable, words_of
from keys.db import db

group = MethodGroup()

SearchAlbumNotFound = method_error(2, "Album not found", "The album ID is invalid or insufficient "
                                                         "permissions to view this album.")

SearchInvalidArgument = method_error(3, "Invalid argument", "An argument has an invalid value "
                                                            "(enumeration, date, tags, dist).")

MAX_TAGS = 20
MAX_WORD = 1000  # characters of one text word: 4,000 UTF-8 bytes at most
MAX_MD5 = 20
CONTEXT_DEFAULT, MAX_CONTEXT = 1, 50  # doc.getContext prev/next
DEFAULT_DIST, MAX_DIST = 5000, 30000  # metres (§10.4)
MD5Invalid = method_error(1, "Invalid md5 list",
                          f"md5 is missing, or holds more than {MAX_MD5} values.")
METRES_PER_DEGREE = 111_195.0  # mean Earth radius × π/180
CREATED = re.compile(r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2})?$")
NEWEST_FIRST = (Doc.posted_at.desc(), Doc.id.desc())
LIST_EXTRAS = ("dates", "count", "geo", "medias", "original", "md5")
SEARCH_EXTRAS = ("owner", "dates", "count", "license", "medias", "geo", "original")

# Matches counted exactly on PostgreSQL; beyond, ``total`` is the planner's estimate.
EXACT_TOTAL = 1000

DOCS_PAGE = Paging("documents", default=20, maximum=100, wording=NUMBER_OF)

# Parameters several of these methods take, with their help.
Share = Annotated[int | None, "Only docs at this share level: 0 private … 4 public."]
PerPage = Annotated[int | None, DOCS_PAGE.per_page_help]
PageNumber = Annotated[int | None, DOCS_PAGE.page_help]


def list_page(call: Call, where: Sequence[Expression], order: Sequence[Any], page: Page,
              extras: set[str], thumbsize: str, *, ids_first: bool = False,
              count_along: bool = False) -> dict:
    """``<docs total page pages per_page count><doc/>…</docs>`` in three queries at any size
    (two for a last page, four on PostgreSQL when more than ``EXACT_TOTAL`` docs match; the
    thumbs' query included).

    ``ids_first`` (a radius search, which reads and sorts every doc of its box): on PostgreSQL
    one query picks the page's ids, from the covering index of geotagged docs alone (an
    index-only scan, api/models/search.py, when no text or tags are asked), and a second reads
    those docs' rows; same docs, same order. ``count_along`` (text or tags too, which the index
    cannot answer: each doc of the box is read from the table): that first query also counts
    every match (``count(*) OVER ()``, exact), so the box is read once, not twice."""
    rows = owned_docs()
    total = None
    if ids_first and count_along and isinstance(db.obj, PostgresqlDatabase):
        picked = list(page.apply(Doc.select(Doc.id, fn.count(SQL("*")).over())
                                 .where(*where).order_by(*order)).tuples())
        docs = list(rows.where(Doc.id.in_([doc_id for doc_id, _ in picked]))
                    .order_by(*order)) if picked else []
        if picked:
            total = max(int(picked[0][1]), page.offset + len(docs))
    elif ids_first and isinstance(db.obj, PostgresqlDatabase):
        chosen = page.apply(Doc.select(Doc.id).where(*where).order_by(*order))
        docs = list(rows.where(Doc.id.in_(chosen)).order_by(*order))
    else:
        docs = list(page.apply(rows.where(*where).order_by(*order)))
    if total is None and len(docs) < page.per_page and (docs or page.page == 1):
        total = page.offset + len(docs)  # the last page: the count is known
    elif total is None and not docs:  # past the end: fewer than offset match, so pages < page
        total = min(_total(Doc.select(SQL("1")).where(*where)), page.offset)
    elif total is None:
        # A full page: more may follow, so the total reaches past it. Clients walk while
        # page <= pages (PyIpernity's walk_data) or until page == pages (Photini): an estimate
        # below the docs really there must not end their walk early.
        total = max(_total(Doc.select(SQL("1")).where(*where)), page.offset + len(docs) + 1)
    items = doc_trees(docs, call, extras, thumbsize)
    return {"docs": {**page.attrs(total, len(items)), "doc": items}}


def _total(matching: Any) -> int:
    """How many docs ``matching`` selects: exact on SQLite, and on PostgreSQL up to
    ``EXACT_TOTAL``; beyond it, the planner's estimate, never below ``EXACT_TOTAL + 1``
    (docs/protocol-choices.md, "Full-text search": a count of 150,000 rows takes longer than the
    search)."""
    database = db.obj
    if not isinstance(database, PostgresqlDatabase):
        return int(matching.count())
    counted = int(matching.limit(EXACT_TOTAL + 1).count())
    if counted <= EXACT_TOTAL:
        return counted
    sql, params = matching.sql()
    plan = database.execute_sql("EXPLAIN (FORMAT JSON) " + sql, params).fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return max(int(plan[0]["Plan"]["Plan Rows"]), EXACT_TOTAL + 1)


def _present(*clauses: Expression | None) -> list[Expression]:
    return [c for c in clauses if c is not None]


@group.method("doc.getList", title="Return the member's list of documents", safety=True,
              missing=UserNotFound, invalid=InvalidArgument,
              response='<docs total="12" per_page="20" page="1" pages="1"><doc …/></docs>')
def get_list(call: Call,
             user_id: Annotated[str, "The member's ID or web alias; defaults to the "
                                     "authenticated user (the token's)."] = "",
             media: MediaFilter = "",
             share: Share = None, safesurf: Safesurf = None,
             extra: Annotated[str, extra_help(LIST_EXTRAS)] = "", thumbsize: Thumbsize = "",
             per_page: PerPage = None, page: PageNumber = None) -> dict:
    """Return a member's documents the caller may see, newest first."""
    user = find_open_member(user_id) if user_id else call.user
    if user is None:
        raise UserNotFound(user_id or "missing parameter user_id")
    viewer = viewer_of(call)
    where = _present(Doc.owner == user.id, visible_to(Doc, viewer),
                     safesurf_clause(viewer, safesurf, InvalidArgument),
                     media_clause(media, InvalidArgument), share_clause(share, InvalidArgument))
    return list_page(call, where, NEWEST_FIRST, DOCS_PAGE.page(page, per_page),
                     parse_extra(extra, LIST_EXTRAS), parse_thumbsize(thumbsize))


@group.method("doc.search", title="Search for documents.", safety=True, perms=READ,
              invalid=SearchInvalidArgument, errors=(UserNotFound, SearchAlbumNotFound),
              response='<docs page="1" total="51258" pages="2563" per_page="20">'
                       '<doc doc_id title license><owner user_id/><thumb/></doc></docs>')
def search(call: Call,
           user_id: Annotated[str, "Only this member's docs (ID or web alias)."] = "",
           media: Annotated[str, "photo, video, audio, other, or a comma list of them."] = "",
           share: Share = None, safesurf: Safesurf = None,
           text: Annotated[str, "Words that must all appear in the title, description or "
                                f"tags (each at most {MAX_WORD} characters)."] = "",
           tags: Annotated[str, f"Up to {MAX_TAGS} comma-separated keywords; a doc must carry "
                                "all of them."] = "",
           album_id: Annotated[int | None, "Only docs in this album."] = None,
           group_id: Annotated[int | None, "Only docs in this group (no groups exist yet: no "
                                           "results)."] = None,
           license: Annotated[str, "A licence code or a comma list of them "
                                   f"({codes_listed()})."] = "",
           posted_min: Annotated[int | None, "Posted at or after (UNIX time)."] = None,
           posted_max: Annotated[int | None, "Posted at or before (UNIX time)."] = None,
           created_min: Annotated[str, "Created at or after (YYYY-MM-DD HH:MM:SS)."] = "",
           created_max: Annotated[str, "Created at or before (YYYY-MM-DD HH:MM:SS)."] = "",
           lat: Annotated[float | None, "Latitude of the centre of a radius search."] = None,
           lng: Annotated[float | None, "Longitude of the centre of a radius search."] = None,
           dist: Annotated[int | None, f"Radius in metres (default {DEFAULT_DIST}, max "
                                       f"{MAX_DIST})."] = None,
           sort: Annotated[str, "relevance (default), popular, posted-desc, posted-asc, "
                                "created-desc or created-asc."] = "relevance",
           extra: Annotated[str, extra_help(SEARCH_EXTRAS)] = "", thumbsize: Thumbsize = "",
           per_page: PerPage = None, page: PageNumber = None) -> dict:
    """Search the docs the caller may see; every criterion given must hold (docs/documents.md)."""
    viewer = viewer_of(call)
    bad = SearchInvalidArgument
    where = _present(visible_to(Doc, viewer), safesurf_clause(viewer, safesurf, bad),
                     media_clause(media, bad), share_clause(share, bad),
                     _owner_clause(user_id), _album_clause(call, album_id),
                     _license_clause(license),
                     words := _text_clause(text, indexed=not user_id),
                     keywords := _tags_clause(tags),
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
    return list_page(call, where, order, DOCS_PAGE.page(page, per_page), extras,
                     parse_thumbsize(thumbsize), ids_first=geo is not None,
                     count_along=geo is not None and (words is not None
                                                      or keywords is not None))


def _owner_clause(user_id: str) -> Expression | None:
    if not user_id:
        return None
    user = find_open_member(user_id)
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
    return Doc.license.in_(parse_choices(license, LICENSE_CODES, int, SearchInvalidArgument))


def _text_clause(text: str, *, indexed: bool) -> Expression | None:
    """Every word must be a whole word of the title, the description or a keyword tag, in any
    case (the full-text index, api/models/search.py); a text of punctuation alone matches no
    doc. Within one member's docs (not ``indexed``) PostgreSQL checks the words doc by doc."""
    given = text.split()[:MAX_TAGS]
    if not given:
        return None
    if any(len(word) > MAX_WORD for word in given):
        raise SearchInvalidArgument(f"a word longer than {MAX_WORD} characters")
    words = words_of(" ".join(given))
    if not words or any(unindexable(word) for word in words):
        return Doc.id.in_([])
    return text_match(db.obj, words, indexed=indexed)


def _tags_clause(tags: str) -> Expression | None:
    """Docs carrying every keyword of the list: on PostgreSQL, the keyword lexemes of the GIN
    index; on SQLite, one semi-join per keyword, each read from the (norm, type, doc) index."""
    keywords = [keyword.lower() for keyword in parse_keywords(tags)]
    if not keywords:
        return None
    if len(keywords) > MAX_TAGS:
        raise SearchInvalidArgument(f"{len(keywords)} tags")
    if isinstance(db.obj, PostgresqlDatabase):
        return keywords_match(keywords)
    clauses = [Doc.id.in_(Tag.select(Tag.doc).where(Tag.norm == keyword, Tag.type == "keyword"))
               for keyword in keywords]
    return reduce(operator.and_, clauses)


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


@group.method("doc.getContext", title="Get the document context in docstream", perms=READ,
              missing=DocNotFound, invalid=InvalidArgument,
              response='<prev count><doc index="-1" …/></prev><doc index="0" …/>'
                       '<next count><doc index="1" …/></next>')
def get_context(call: Call, doc_id: DocId,
                media: Annotated[str, "Only docs of this media type (a comma list is "
                                      "accepted)."] = "",
                safesurf: Safesurf = None,
                prev: Annotated[int, f"How many earlier docs (default {CONTEXT_DEFAULT}, max "
                                     f"{MAX_CONTEXT})."] = CONTEXT_DEFAULT,
                next: Annotated[int, f"How many later docs (default {CONTEXT_DEFAULT}, max "
                                     f"{MAX_CONTEXT})."] = CONTEXT_DEFAULT,
                thumbsize: Thumbsize = "") -> dict:
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


@group.method("doc.checkMD5", title="Check if a doc exists in your stream using MD5.",
              token=True, sign=True, perms=READ, missing=MD5Invalid,
              response='<docs count="5" found="2"><doc md5 doc_id found="1"/></docs>')
def check_md5(call: Call,
              md5: Annotated[str, f"An md5 or a comma-separated list of up to {MAX_MD5}."]
              ) -> dict:
    """Tell which of the given file MD5s are already in the caller's stream (upload de-dup).

    Only found docs are listed (the method's note: an md5 not found gives no entry), so a client
    can call doc.get on every ``doc_id``; ``count`` is still how many md5s were checked.
    """
    sums = list(dict.fromkeys(s.strip().lower() for s in md5.split(",") if s.strip()))
    if not sums or len(sums) > MAX_MD5:
        raise MD5Invalid(f"{len(sums)} md5")
    found: dict[str, int] = {}
    for row in (Doc.select(Doc.id, Doc.md5)
                .where(Doc.owner == call.require_user().id, Doc.md5.in_(sums))
                .order_by(Doc.id)):
        found.setdefault(row.md5, row.id)
    items = [{"md5": s, "doc_id": found[s], "found": True} for s in sums if s in found]
    return {"docs": {"count": len(sums), "found": len(found), "doc": items}}
