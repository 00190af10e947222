"""``doc.get``, ``doc.getMedias``, ``doc.getExif``, ``doc.getVisitors``, ``doc.getFaves``: one
document (spec §9, §10); an authenticated view by another member counts as a visit
(docs/documents.md).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from peewee import JOIN, fn

from api.content.access import owned_doc, relation_to, viewer_of, visible_doc, visible_to
from api.content.faves import FAVERS_PAGE, favers, is_fave
from api.content.groups import seen_by
from api.content.trees import (
    dates_tree,
    display_name,
    geo_tree,
    medias_by_doc,
    medias_tree,
    member_tree,
    note_tree,
    original_tree,
    parse_extra,
    sorted_thumbs,
    tag_tree,
    thumb_tree,
    thumbs_by_doc,
)
from api.content.visits import VISITORS_PAGE, record_visit, visitors
from api.core.context import Call
from api.core.registry import MethodGroup
from api.formats.tree import Text
from api.methods.common import READ, DocNotFound, extra_help
from api.methods.doc.shared import (
    CallersDocId,
    DocId,
    can_tree,
    permissions_tree,
)
from api.models.docs import Album, AlbumDoc, Comment, Doc, DocVisit, Note, Tag
from api.models.groups import Group, GroupDoc
from keys.models import User

group = MethodGroup()
ROTATION = {1: 0, 3: 180, 6: 90, 8: 270}  # EXIF orientation → degrees clockwise
GET_EXTRAS = ("tags", "notes", "geo", "md5")


@group.method("doc.get", title="Get details about document.", perms=READ, missing=DocNotFound,
              invalid=DocNotFound,
              response="<doc doc_id media license title …><owner/><thumbs>…</thumbs></doc>")
def get(call: Call, doc_id: DocId, extra: Annotated[str, extra_help(GET_EXTRAS)] = "") -> dict:
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
        "count": count_tree(doc, call.user, viewer_of(call)),
        "can": can_tree(call, doc, viewer, relation),
        "you": you_tree(visit, is_fave(doc, call.user)) if call.user else None,
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


def you_tree(visit: DocVisit | None, faved: bool) -> dict[str, Any]:
    """``<you isfave visits last_visit/>``, plus ``last_visit_at`` (the same time) that live
    clients read."""
    last = visit.visited_at if visit else 0
    return {"isfave": faved, "visits": visit.visits if visit else 0, "last_visit": last,
            "last_visit_at": last}


def count_tree(doc: Doc, user: User | None, viewer: User | None) -> dict[str, Any]:
    """``<count …/>`` of doc.get: stored counters plus counted notes, tags, the albums
    ``viewer`` may see that hold the doc and the groups ``user`` may see whose pool holds it
    (accepted, not waiting), as doc.getContainers lists them."""
    last = (DocVisit.select(fn.MAX(DocVisit.visited_at)).where(DocVisit.doc == doc.id).scalar())
    return {"visits": doc.visits, "faves": doc.faves, "comments": doc.comments,
            "notes": Note.select().where(Note.doc == doc.id).count(),
            "tags": Tag.select().where(Tag.doc == doc.id).count(),
            "albums": AlbumDoc.select().join(Album, on=(AlbumDoc.album == Album.id)).where(
                AlbumDoc.doc == doc.id, visible_to(Album, viewer)).count(),
            "groups": GroupDoc.select().join(Group, on=(GroupDoc.group == Group.id)).where(
                GroupDoc.doc == doc.id, GroupDoc.pending == False,  # noqa: E712
                seen_by(user)).count(),
            "last_visit": last or 0}


def medias_trees(call: Call, doc: Doc) -> dict[str, Any]:
    """``<thumbs>`` with every label, ``<medias>`` for video and audio, and ``<original>``."""
    thumbs = sorted_thumbs(thumbs_by_doc([doc]).get(doc.id, []))
    return {"thumbs": {"thumb": [thumb_tree(call, doc, t) for t in thumbs]},
            "medias": (medias_tree(call, doc, medias_by_doc([doc]).get(doc.id, []))
                       if doc.media in ("video", "audio") else None),
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
    member = tag.member if tag.type == "member" and tag.member_id else None
    if member is not None:
        item.update(member_id=tag.member_id, title=display_name(member))
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


@group.method("doc.getMedias", title="Get document media urls (thumbs, medias, original,...).",
              perms=READ, missing=DocNotFound, invalid=DocNotFound,
              response="<thumbs><thumb label w h url/>…</thumbs><medias/><original/>")
def get_medias(call: Call, doc_id: DocId) -> dict:
    """Return the URLs of a document's thumbnails, media renditions and original."""
    return medias_trees(call, visible_doc(call, doc_id, DocNotFound))


@group.method("doc.getExif", title="Return the meta information for a document (EXIF/ID3/...).",
              perms=READ, missing=DocNotFound, invalid=DocNotFound,
              response='<exif doc_id="12345" total="2"><tag name="Make" value="Canon"/>…</exif>')
def get_exif(call: Call, doc_id: DocId) -> dict:
    """Return the metadata read from a document's file, one ``tag`` per field."""
    doc = visible_doc(call, doc_id, DocNotFound)
    try:
        fields = json.loads(doc.exif) if doc.exif else {}
    except ValueError:
        fields = {}
    tags = [{"name": str(k), "value": v if isinstance(v, str) else json.dumps(v)}
            for k, v in (fields.items() if isinstance(fields, dict) else ())]
    return {"exif": {"doc_id": doc.id, "total": len(tags), "tag": tags}}


@group.method("doc.getVisitors", title="Return the document latest visitors.", token=True,
              sign=True, perms=READ, missing=DocNotFound, invalid=DocNotFound,
              response='<visits count per_page pages page total>'
                       '<visit user_id username visited_at first_visit_at visits/></visits>')
def get_visitors(call: Call, doc_id: CallersDocId,
                 per_page: Annotated[int | None, VISITORS_PAGE.per_page_help] = None,
                 page: Annotated[int | None, VISITORS_PAGE.page_help] = None) -> dict:
    """Return the members who viewed one of the caller's documents, latest first."""
    doc = owned_doc(call, doc_id, DocNotFound)
    return visitors(doc, DocVisit, "doc", VISITORS_PAGE.page(page, per_page))


@group.method("doc.getFaves", title="Return the list of members who have faved a document.",
              perms=READ, missing=DocNotFound, invalid=DocNotFound,
              response='<faves count per_page pages page total>'
                       '<fave user_id username faved_at/></faves>')
def get_faves(call: Call, doc_id: DocId,
              per_page: Annotated[int | None, FAVERS_PAGE.per_page_help] = None,
              page: Annotated[int | None, FAVERS_PAGE.page_help] = None) -> dict:
    """Return the members who faved a document the caller may see, latest first; closed members
    are left out."""
    doc = visible_doc(call, doc_id, DocNotFound)
    return favers(doc, FAVERS_PAGE.page(page, per_page))
