"""``album.docs.*``: adding, removing and replacing an album's docs (owner only), and listing
them in album order with their context (spec §9, shapes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from peewee import Expression

from api.content.access import media_clause, safesurf_clause, share_clause, viewer_of, visible_to
from api.content.albums import append_docs, covers, touch
from api.content.trees import (
    DEFAULT_THUMBSIZE,
    context_item,
    doc_trees,
    parse_extra,
    parse_thumbsize,
    thumbs_by_doc,
)
from api.content.visits import record_visit
from api.core.context import Call
from api.core.errors import method_error
from api.core.paging import Paging
from api.core.registry import MethodGroup
from api.methods.album.shared import (
    AlbumId,
    AlbumNotFound,
    OwnAlbumId,
    own_album,
    own_doc_ids,
    visible_album,
)
from api.methods.common import WRITE, InvalidArgument, parse_ids
from api.models.docs import Album, AlbumDoc, AlbumVisit, Doc
from keys.db import db

group = MethodGroup()

DocNotInAlbum = method_error(2, "Document not found", "The document is not in this album, or you "
                                                      "may not see it.")

DOCS_EXTRAS = ("dates", "geo", "medias", "original", "link")
CONTEXT_DEFAULT, CONTEXT_MAX = 1, 50  # album.docs.getContext prev/next (not published; ours)
DOCS_PAGE = Paging("Docs", default=20, maximum=100)

# Parameters both album.docs lists take, with their help.
Media = Annotated[str, "photo, video, audio or other (a comma list works too)."]
Safesurf = Annotated[int | None, "Highest safety level to show: 1, 2 or 3."]
Thumbsize = Annotated[str, "Thumbnail size (75x by default)."]


def album_total(album: Album) -> int:
    """How many docs an album holds (all of them: the answer goes to the owner)."""
    return AlbumDoc.select().where(AlbumDoc.album == album).count()


def added_rows(doc_ids: Sequence[int], own: set[int], new: set[int]) -> list[dict[str, Any]]:
    """``<doc doc_id added error/>`` per requested doc: error=1 for a doc that is not yours."""
    return [{"doc_id": doc_id, "added": doc_id in new, "error": doc_id not in own}
            for doc_id in doc_ids]


# The most ids one call of album.docs.add, .remove or .setList takes (code 2 beyond): read in
# one linear pass that stops there, before any lock (api.methods.common.parse_ids).
MAX_LISTED_DOCS = 10_000


@group.method("album.docs.add", title="Add one or many docs to an album", token=True, sign=True,
              post=True, perms=WRITE, missing=AlbumNotFound, invalid=InvalidArgument,
              response='<album album_id total added skipped><doc doc_id added error/></album>')
def docs_add(call: Call, album_id: OwnAlbumId,
             doc_id: Annotated[str, "A doc id, or a comma list of them (at most 10,000); only "
                                    "your own docs are added."]) -> dict:
    """Append the caller's docs to one of their albums; others' docs are flagged error=1."""
    doc_ids = parse_ids(doc_id, MAX_LISTED_DOCS)  # before the album's lock: a huge list is cheap
    album = own_album(call, album_id)
    own = own_doc_ids(call.require_user(), doc_ids)
    with db.atomic():
        new = append_docs(album, [d for d in doc_ids if d in own], call.now())
        touch(album, call.now())
    return {"album": {"album_id": album.id, "total": album_total(album), "added": len(new),
                      "skipped": len(doc_ids) - len(new), "doc": added_rows(doc_ids, own, new)}}


@group.method("album.docs.remove", title="Remove one or many docs from an album", token=True,
              sign=True, post=True, perms=WRITE, missing=AlbumNotFound, invalid=InvalidArgument,
              response='<album album_id total removed skipped><doc doc_id removed/></album>')
def docs_remove(call: Call, album_id: OwnAlbumId,
                doc_id: Annotated[str, "A doc id, or a comma list of them (at most "
                                       "10,000)."]) -> dict:
    """Take docs out of one of the caller's albums; the docs themselves stay."""
    doc_ids = parse_ids(doc_id, MAX_LISTED_DOCS)
    album = own_album(call, album_id)
    with db.atomic():
        present = {row.doc_id for row in AlbumDoc.select(AlbumDoc.doc)
                   .where(AlbumDoc.album == album, AlbumDoc.doc.in_(doc_ids))}
        AlbumDoc.delete().where(AlbumDoc.album == album, AlbumDoc.doc.in_(doc_ids)).execute()
        touch(album, call.now())
    return {"album": {"album_id": album.id, "total": album_total(album), "removed": len(present),
                      "skipped": len(doc_ids) - len(present),
                      "doc": [{"doc_id": d, "removed": d in present} for d in doc_ids]}}


@group.method("album.docs.setList", title="Replace all the documents and the cover of an album",
              token=True, sign=True, post=True, perms=WRITE, missing=InvalidArgument,
              invalid=InvalidArgument, errors=(AlbumNotFound,),
              response='<album album_id cover_id total added skipped>'
                       '<doc doc_id added error/><docs doc_id added error/></album>')
def docs_set_list(call: Call, album_id: OwnAlbumId,
                  doc_ids: Annotated[str, "Comma list of your doc ids, in album order (at most "
                                            "10,000)."],
                  cover_id: Annotated[int, "The cover: one of doc_ids."]) -> dict:
    """Make the album hold exactly these docs in this order (others' docs are skipped)."""
    wanted = parse_ids(doc_ids, MAX_LISTED_DOCS)
    album = own_album(call, album_id)
    own = own_doc_ids(call.require_user(), wanted)
    kept = [d for d in wanted if d in own]
    if cover_id not in kept:
        raise InvalidArgument(f"cover {cover_id} is not among your docs in doc_ids")
    now = call.now()
    with db.atomic():
        before = {row.doc_id: row.added_at for row in AlbumDoc.select().where(
            AlbumDoc.album == album)}
        AlbumDoc.delete().where(AlbumDoc.album == album).execute()
        AlbumDoc.insert_many([{"album": album.id, "doc": d, "position": i,
                               "added_at": before.get(d, now)}
                              for i, d in enumerate(kept, 1)]).execute()
        Album.update(cover=cover_id, modified_at=now).where(Album.id == album.id).execute()
    new = {d for d in kept if d not in before}
    rows = added_rows(wanted, own, new)  # also under ``docs``, where a live client reads them
    return {"album": {"album_id": album.id, "cover_id": cover_id, "total": len(kept),
                      "added": len(new), "skipped": len(wanted) - len(new),
                      "doc": rows, "docs": rows}}


def album_docs_query(call: Call, album: Album, safe: Expression, *, media: str = "",
                     share: int | None = None) -> Any:
    """The docs of an album the caller may see, in album order, with the list filters."""
    clauses = [AlbumDoc.album == album, visible_to(Doc, viewer_of(call)), safe,
               media_clause(media, InvalidArgument), share_clause(share, InvalidArgument)]
    return (Doc
            .select(Doc)
            .join(AlbumDoc)
            .where(*[c for c in clauses if c is not None])
            .order_by(AlbumDoc.position, AlbumDoc.id))


def in_album_link(call: Call, doc: Doc, album: Album) -> str:
    """The doc's page inside the album."""
    return f"{call.base_url}/doc/{doc.owner_id}/{doc.id}/in/album/{album.id}"


@group.method("album.docs.getList", title="Return the list of documents in an album",
              safety=True, missing=AlbumNotFound, invalid=InvalidArgument,
              response='<album album_id><docs total page pages per_page count><doc …><thumb/>'
                       '</doc></docs><cover/></album>')
def docs_get_list(call: Call, album_id: AlbumId, media: Media = "",
                  share: Annotated[int | None, "Only docs at this share level: 0 private … 4 "
                                               "public."] = None,
                  safesurf: Safesurf = None,
                  extra: Annotated[str, f"Comma list of: {', '.join(DOCS_EXTRAS)}."] = "",
                  thumbsize: Thumbsize = DEFAULT_THUMBSIZE,
                  per_page: Annotated[int | None, DOCS_PAGE.per_page_help] = None,
                  page: Annotated[int | None, DOCS_PAGE.page_help] = None) -> dict:
    """The album's docs the caller may see, in album order; a fixed number of queries."""
    album = visible_album(call, album_id)
    slice_ = DOCS_PAGE.page(page, per_page)
    viewer = viewer_of(call)
    safe = safesurf_clause(viewer, safesurf, InvalidArgument)
    query = album_docs_query(call, album, safe, media=media, share=share)
    total = query.count()
    docs = list(slice_.apply(query))
    extras = parse_extra(extra, DOCS_EXTRAS)
    label = parse_thumbsize(thumbsize)
    items = doc_trees(docs, call, extras, label)
    if "link" in extras:
        for doc, item in zip(docs, items, strict=True):
            item["link"] = in_album_link(call, doc, album)
    record_visit(call, album, AlbumVisit, "album")
    return {"album": {"album_id": album.id,
                      "docs": {**slice_.attrs(total, len(items)), "doc": items},
                      "cover": covers(call, [album], label, safe=safe).get(album.id)}}


@group.method("album.docs.getContext", title="Get the document context in an album",
              safety=True, missing=AlbumNotFound, invalid=InvalidArgument,
              errors=(DocNotInAlbum,),
              response='<album album_id total thumbsize/><prev count><doc index="-1" …/></prev>'
                       '<doc index="0" …/><next count><doc index="1" …/></next>')
def docs_get_context(call: Call, album_id: AlbumId,
                     doc_id: Annotated[int, "A doc of the album."], media: Media = "",
                     safesurf: Safesurf = None,
                     prev: Annotated[int, f"Docs before it: {CONTEXT_DEFAULT} by default, at "
                                          f"most {CONTEXT_MAX}."] = CONTEXT_DEFAULT,
                     next: Annotated[int, f"Docs after it: {CONTEXT_DEFAULT} by default, at "
                                          f"most {CONTEXT_MAX}."] = CONTEXT_DEFAULT,
                     thumbsize: Thumbsize = DEFAULT_THUMBSIZE) -> dict:
    """A doc with its neighbours in album order, among the docs the caller may see."""
    album = visible_album(call, album_id)
    if not (0 <= prev <= CONTEXT_MAX and 0 <= next <= CONTEXT_MAX):
        raise InvalidArgument(f"prev={prev} next={next}")
    safe = safesurf_clause(viewer_of(call), safesurf, InvalidArgument)
    query = album_docs_query(call, album, safe, media=media)
    order = [row.id for row in query.select(Doc.id)]
    if doc_id not in order:
        raise DocNotInAlbum(f"doc {doc_id} not in album {album_id}")
    at = order.index(doc_id)
    window = order[max(at - prev, 0):at + next + 1]
    docs = {d.id: d for d in Doc.select().where(Doc.id.in_(window))}
    thumbs = thumbs_by_doc(list(docs.values()))
    label = parse_thumbsize(thumbsize)

    def item(position: int) -> dict[str, Any]:
        doc = docs[order[position]]
        return context_item(call, doc, thumbs.get(doc.id, []), label, position - at,
                            in_album_link(call, doc, album))

    before = [item(i) for i in range(at - 1, max(at - prev, 0) - 1, -1)]
    after = [item(i) for i in range(at + 1, min(at + next, len(order) - 1) + 1)]
    return {"album": {"album_id": album.id, "total": len(order), "thumbsize": label},
            "prev": {"count": len(before), "doc": before},
            "doc": item(at),
            "next": {"count": len(after), "doc": after}}
