"""Doc → result-tree building shared by every family that lists documents (spec §10.2, §10.3).

``doc_trees`` renders a page of docs with a fixed number of queries (thumbs, owners: one IN query
each), whatever the page size; ``doc_tree`` is the one-doc case of the same code.
``parse_extra`` and ``parse_thumbsize`` read the ``extra=`` and ``thumbsize=`` alike everywhere.
Member cards (``owner_tree``, ``member_tree``), tags and notes are built here too, so every method
that shows one shows the same attributes (docs/protocol-choices.md, "What live clients read").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from api.content.licenses import COPYRIGHT
from api.core.context import Call
from api.media.names import icon_url, media_url, original_url, thumb_url
from api.models.docs import Doc, Media, Note, Tag, Thumb
from keys.models import User

# Spec §10.2, smallest first; an `x` suffix marks a square crop.
THUMB_LABELS = ("75x", "100", "240", "250x", "500", "560", "640", "800", "1024", "1600", "2048")
DEFAULT_THUMBSIZE = "75x"
# <media> labels in the spec's order (§10.2; ``flv`` is never made), then audio's.
MEDIA_LABELS = ("flv", "ipod", "mp4", "hd", "mp3")


def parse_thumbsize(value: str | None) -> str:
    """The thumbsize label asked for; an unknown or empty value means the default, 75x (§10.2)."""
    value = (value or "").strip().lower()
    return value if value in THUMB_LABELS else DEFAULT_THUMBSIZE


def parse_extra(value: str | None, allowed: Iterable[str]) -> set[str]:
    """The ``extra=`` names a method supports; unknown ones are ignored (clients send supersets)."""
    names = {part.strip().lower() for part in (value or "").split(",")}
    return names & set(allowed)


def thumb_tree(call: Call, doc: Doc, thumb: Thumb) -> dict[str, Any]:
    """One ``<thumb label ext w h url/>``."""
    return {"label": thumb.label, "ext": thumb.ext, "w": thumb.w, "h": thumb.h,
            "url": thumb_url(call.base_url, doc, thumb.label, thumb.ext)}


def pick_thumb(thumbs: Sequence[Thumb], label: str) -> Thumb | None:
    """The thumb at ``label``, else the doc's largest ("the max value they have", §10.2)."""
    for thumb in thumbs:
        if thumb.label == label:
            return thumb
    return max(thumbs, key=lambda t: (t.w * t.h, t.label), default=None)


def sorted_thumbs(thumbs: Iterable[Thumb]) -> list[Thumb]:
    """Thumbs in the spec's label order (smallest first)."""
    order = {label: i for i, label in enumerate(THUMB_LABELS)}
    return sorted(thumbs, key=lambda t: order.get(t.label, len(order)))


def thumbs_by_doc(docs: Sequence[Doc]) -> dict[int, list[Thumb]]:
    """Every thumb of ``docs`` in one query, keyed by doc id."""
    out: dict[int, list[Thumb]] = defaultdict(list)
    if docs:
        for thumb in Thumb.select().where(Thumb.doc.in_([d.id for d in docs])):
            out[thumb.doc_id].append(thumb)
    return out


def load_owners(docs: Sequence[Doc]) -> None:
    """Attach owners to docs fetched without a join, in one query (none when already joined)."""
    missing = {d.owner_id for d in docs if "owner" not in d.__rel__}
    if not missing:
        return
    users = {u.id: u for u in User.select().where(User.id.in_(missing))}
    for doc in docs:
        if "owner" not in doc.__rel__:
            doc.owner = users[doc.owner_id]


def owner_tree(user: User) -> dict[str, Any]:
    """``<owner user_id username realname/>``."""
    return {"user_id": user.id, "username": user.username, "realname": user.realname}


def display_name(user: User) -> str:
    """How a member is named to others: the real name, else the username."""
    return user.realname or user.username


def member_tree(call: Call, user: User) -> dict[str, Any]:
    """``owner_tree`` plus ``alias is_pro icon``: doc.get's owner as live clients read it."""
    return {**owner_tree(user), "alias": user.username, "is_pro": user.is_pro,
            "icon": icon_url(call.base_url, user)}


def tag_tree(tag: Tag, doc: Doc, *, dated: bool = False) -> dict[str, Any]:
    """``<tag type id user_id tag [added_at]/>``: a member tag's id is the member's user id."""
    return {"type": tag.type, "id": tag.member_id if tag.type == "member" else tag.id,
            "user_id": tag.added_by_id or doc.owner_id, "tag": tag.tag,
            "added_at": tag.created_at if dated else None}


def note_tree(note: Note, **head: Any) -> dict[str, Any]:
    """``<note note_id user_id … [member_id membername] x y w h content>text</note>``.

    ``head`` holds the method's own attributes (doc.get: ``username``; doc.notes.*: ``posted_at``).
    The text is the element's and ``content`` too; a note naming a member carries the member's id
    and display name (``note.member`` set or joined).
    """
    member = note.member if note.member_id is not None else None
    return {"note_id": note.id, "user_id": note.author_id, **head,
            "member_id": note.member_id,
            "membername": display_name(member) if member is not None else None,
            "x": note.x, "y": note.y, "w": note.w, "h": note.h,
            "content": note.content, "_value": note.content}


def dates_tree(doc: Doc) -> dict[str, Any]:
    """``<dates posted_at created modified_at/>`` (UNIX seconds, ``created`` as text, §10.4)."""
    return {"posted_at": doc.posted_at, "created": doc.created, "modified_at": doc.modified_at}


def geo_tree(doc: Doc) -> dict[str, Any] | None:
    """``<geo lat lng/>``, or nothing when the doc has no place."""
    if doc.lat is None or doc.lng is None:
        return None
    return {"lat": doc.lat, "lng": doc.lng}


def may_download(call: Call, doc: Doc) -> bool:
    """The original is offered to its owner, and to others only under a free licence (not 0)."""
    return doc.license != COPYRIGHT or (call.user is not None and call.user.id == doc.owner_id)


def original_tree(call: Call, doc: Doc) -> dict[str, Any] | None:
    """``<original ext w h length bytes url/>`` when there is one the caller may fetch."""
    if not doc.original_ext or not may_download(call, doc):
        return None
    return {"ext": doc.original_ext, "w": doc.width, "h": doc.height, "length": doc.duration,
            "bytes": doc.original_size, "url": original_url(call.base_url, doc)}


def medias_by_doc(docs: Sequence[Doc]) -> dict[int, list[Media]]:
    """Every web rendition of the video and audio ``docs`` in one query (none for a page of
    photos), keyed by doc id."""
    out: dict[int, list[Media]] = defaultdict(list)
    playable = [d.id for d in docs if d.media in ("video", "audio")]
    if playable:
        for media in Media.select().where(Media.doc.in_(playable)):
            out[media.doc_id].append(media)
    return out


def medias_tree(call: Call, doc: Doc, medias: Iterable[Media]) -> dict[str, Any]:
    """``<medias><media label ext w h lenght length url/>…</medias>``: the web renditions, in
    the spec's label order; the length under the examples' spelling and the right one (an empty
    container for a doc without any)."""
    order = {label: i for i, label in enumerate(MEDIA_LABELS)}
    return {"media": [{"label": m.label, "ext": m.ext, "w": m.width, "h": m.height,
                       "lenght": m.duration, "length": m.duration,
                       "url": media_url(call.base_url, doc, m.label, m.ext)}
                      for m in sorted(medias, key=lambda m: order.get(m.label, len(order)))]}


def doc_trees(docs: Sequence[Doc], call: Call, extras: set[str],
              thumbsize: str) -> list[dict[str, Any]]:
    """List items (``<doc …><thumb/>…</doc>``) for a page of docs in a fixed number of queries."""
    thumbs = thumbs_by_doc(docs)
    medias = medias_by_doc(docs) if "medias" in extras else {}
    if "owner" in extras:
        load_owners(docs)
    return [_list_item(doc, call, extras, pick_thumb(thumbs.get(doc.id, []), thumbsize),
                       medias.get(doc.id, []))
            for doc in docs]


def doc_tree(doc: Doc, call: Call, extras: set[str], thumbsize: str) -> dict[str, Any]:
    """One list item; the same shape ``doc_trees`` gives."""
    return doc_trees([doc], call, extras, thumbsize)[0]


def _list_item(doc: Doc, call: Call, extras: set[str], thumb: Thumb | None,
               medias: list[Media]) -> dict[str, Any]:
    tree: dict[str, Any] = {"doc_id": doc.id, "media": doc.media, "license": doc.license,
                            "title": doc.title, "safety": doc.safety}
    if "md5" in extras:
        tree["md5"] = doc.md5
    if "owner" in extras:
        tree["owner"] = owner_tree(doc.owner)
    tree["thumb"] = thumb_tree(call, doc, thumb) if thumb else None
    if "dates" in extras:
        tree["dates"] = dates_tree(doc)
    if "count" in extras:
        tree["count"] = {"visits": doc.visits, "faves": doc.faves, "comments": doc.comments}
    if "geo" in extras:
        tree["geo"] = geo_tree(doc)
    if "medias" in extras:
        tree["medias"] = medias_tree(call, doc, medias)
    if "original" in extras:
        tree["original"] = original_tree(call, doc)
    return tree


def context_item(call: Call, doc: Doc, thumbs: Sequence[Any], label: str, index: int,
                 link: str) -> dict[str, Any]:
    """``<doc index doc_id media title safety w h url link user_id/>`` of a context answer."""
    thumb = pick_thumb(thumbs, label)
    return {"index": index, "doc_id": doc.id, "media": doc.media, "title": doc.title,
            "safety": doc.safety, "w": thumb.w if thumb else None,
            "h": thumb.h if thumb else None,
            "url": thumb_url(call.base_url, doc, thumb.label, thumb.ext) if thumb else None,
            "link": link, "user_id": doc.owner_id}
