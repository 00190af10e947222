"""``doc.albums.add`` and ``doc.getContainers``: a doc's albums, seen from the doc (the mirror
of ``album.docs.*``).
"""

from __future__ import annotations

from typing import Annotated

from api.content.access import owned_doc, viewer_of, visible_doc, visible_to
from api.content.albums import album_head, append_docs, covers, doc_counts, touch
from api.content.groups import containers_tree
from api.content.trees import DEFAULT_THUMBSIZE
from api.core.context import Call
from api.core.registry import MethodGroup
from api.methods.common import READ, WRITE, DocNotFound, InvalidArgument, parse_ids
from api.methods.doc.shared import OwnDocId, TheDoc
from api.models.docs import Album, AlbumDoc
from keys.db import db

MAX_ALBUM_IDS = 500  # albums one doc.albums.add names at most (code 2 beyond)

group = MethodGroup()


@group.method("doc.albums.add", title="Add doc in one or many albums", service="doc", token=True,
              sign=True, post=True, perms=WRITE, missing=DocNotFound, invalid=InvalidArgument,
              response='<doc doc_id total added skipped><album album_id added error/></doc>')
def doc_albums_add(call: Call, doc_id: OwnDocId,
                   album_id: Annotated[str | None, "An album id, or a comma list of them (at "
                                                   "most 500); only your albums."] = None) -> dict:
    """Put one of the caller's docs into some of their albums (the mirror of album.docs.add)."""
    doc = owned_doc(call, doc_id, DocNotFound)
    if not album_id:
        raise InvalidArgument("album_id is missing")
    album_ids = parse_ids(album_id, MAX_ALBUM_IDS)
    albums = {a.id: a for a in Album.select().where(Album.id.in_(album_ids),
                                                    Album.owner == call.require_user())}
    rows = []
    with db.atomic():
        for wanted in album_ids:
            album = albums.get(wanted)
            was_added = bool(album and append_docs(album, [doc.id], call.now()))
            if album is not None:
                touch(album, call.now())
            rows.append({"album_id": wanted, "added": was_added, "error": album is None})
    added = sum(row["added"] for row in rows)
    total = AlbumDoc.select().where(AlbumDoc.doc == doc).count()
    return {"doc": {"doc_id": doc.id, "total": total, "added": added,
                    "skipped": len(rows) - added, "album": rows}}


@group.method("doc.getContainers", title="Return all albums and groups the document belongs to.",
              service="doc", perms=READ, missing=DocNotFound, invalid=DocNotFound,
              response='<albums total><album album_id title docs cover link/></albums>'
                       '<groups total added pending invited><group group_id title docs pending '
                       'invited cover link/></groups>')
def get_containers(call: Call, doc_id: TheDoc) -> dict:
    """The albums and groups (that the caller may see) holding a doc."""
    doc = visible_doc(call, doc_id, DocNotFound)
    albums = list(Album
                  .select(Album)
                  .join(AlbumDoc)
                  .where(AlbumDoc.doc == doc, visible_to(Album, viewer_of(call)))
                  .order_by(Album.position, Album.id.desc()))
    counts = doc_counts([a.id for a in albums], viewer_of(call))
    cover_trees = covers(call, albums, DEFAULT_THUMBSIZE)
    items = [{"album_id": album.id, "title": album.title,
              "docs": counts.get(album.id, {}).get("docs", 0),
              "cover": (cover_trees.get(album.id) or {}).get("url", ""),
              "link": album_head(call, album)["link"]} for album in albums]
    return {"albums": {"total": len(items), "album": items},
            "groups": containers_tree(call.base_url, doc, call.user, viewer_of(call))}
