"""The ``faves.*`` family: a member's favourite documents and albums (spec §9, §10.1, §10.3,
method-shapes.md).

A member faves what they may see and do not own; a fave stays when its document or album later
hides from the member, but a list shows only what its viewer may see. Anyone may list anyone's
faves, as on the original. The rules are written down in docs/protocol-choices.md, "Faves
(issue 13)".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from api.content.access import can_view, find_open_member, safesurf_clause, viewer_of, visible_to
from api.content.albums import album_head, can_tree, count_tree, covers, doc_counts
from api.content.faves import add_fave, page_total, remove_fave
from api.content.listing import owned_docs
from api.content.trees import doc_trees, owner_tree, parse_extra, parse_thumbsize
from api.core.context import Call
from api.core.errors import ApiError, method_error
from api.core.paging import NUMBER_OF, Paging
from api.core.registry import MethodGroup
from api.methods.common import (
    READ,
    WRITE,
    AlbumNotFound,
    DocNotFound,
    Safesurf,
    Thumbsize,
    UserNotFound,
    extra_help,
)
from api.models.docs import Album, AlbumFave, Doc, DocFave, Relation
from keys.db import locked
from keys.models import User

group = MethodGroup()

DOC_EXTRAS = ("owner", "dates", "count", "geo", "medias", "original")  # spec §10.3
ALBUM_EXTRAS = ("owner",)
DOCS_PAGE = Paging("documents", default=20, maximum=100, wording=NUMBER_OF)  # spec §10.1
ALBUMS_PAGE = Paging("albums", default=20, maximum=100, wording=NUMBER_OF)

OwnDoc = method_error(2, "Own document", "Your own documents cannot be added to your faves.")
OwnAlbum = method_error(2, "Own album", "Your own albums cannot be added to your faves.")
OwnerNotFound = method_error(2, "Owner not found", "The owner ID is either invalid or the account "
                                                   "is closed/suspended.")
FavesInvalidArgument = method_error(3, "Invalid argument", "An argument has an invalid value "
                                                           "(safesurf).")

FaverId = Annotated[str, "The member whose faves to list (ID or web alias); defaults to the "
                         "authenticated user (the token's)."]
OwnerId = Annotated[str, "Only the faves owned by this member (ID or web alias)."]


def _locked_row(model: Any, row_id: int, not_found: type[ApiError]) -> Any:
    """The doc or album, its row locked until the write ends (PostgreSQL), else ``not_found``.

    Every fave write of one doc takes this lock first, then the fave row: two writers never
    wait on each other in opposite orders."""
    row = locked(model.select().where(model.id == row_id), model).first()
    if row is None:
        raise not_found(f"{model.__name__.lower()} {row_id}")
    return row


def _fave(call: Call, model: Any, row_id: int, not_found: type[ApiError],
          own: type[ApiError]) -> None:
    """Fave a doc or album the caller may see and does not own; a repeated add changes nothing.
    A closed member's doc or album is not found: no list would ever show that fave."""
    user = call.require_user()
    row = _locked_row(model, row_id, not_found)
    if not can_view(row, viewer_of(call)) or not row.owner.is_open:
        raise not_found(f"{model.__name__.lower()} {row_id}")
    if row.owner_id == user.id:
        raise own(f"{model.__name__.lower()} {row_id}")
    add_fave(row, user, call.now())


def _unfave(call: Call, model: Any, row_id: int, not_found: type[ApiError]) -> None:
    """Remove the caller's fave, even of a doc or album hidden from them since; removing what
    is not a fave changes nothing. One the caller may not see and never faved is ``not_found``."""
    row = _locked_row(model, row_id, not_found)
    if not remove_fave(row, call.require_user()) and not can_view(row, viewer_of(call)):
        raise not_found(f"{model.__name__.lower()} {row_id}")


@group.method("faves.docs.add", title="Add a document to your faves", token=True, sign=True,
              post=True, perms=WRITE, missing=DocNotFound, invalid=DocNotFound, errors=(OwnDoc,))
def docs_add(call: Call, doc_id: Annotated[int, "The doc ID to add to your faves."]) -> dict:
    """Add a document the caller may see, and does not own, to the caller's faves.

    A doc the caller may not see answers as a missing one (1); one's own doc is 2. Adding a
    fave again changes nothing (and is not an error). The doc's ``count faves`` goes up by one.
    """
    _fave(call, Doc, doc_id, DocNotFound, OwnDoc)
    return {}


@group.method("faves.docs.remove", title="Remove a document from your faves", token=True,
              sign=True, post=True, perms=WRITE, missing=DocNotFound, invalid=DocNotFound)
def docs_remove(call: Call,
                doc_id: Annotated[int, "The doc ID to remove from your faves."]) -> dict:
    """Remove a document from the caller's faves (also one hidden from the caller since).

    Removing a doc that is not a fave changes nothing; a doc the caller may not see and never
    faved answers as a missing one (1).
    """
    _unfave(call, Doc, doc_id, DocNotFound)
    return {}


@group.method("faves.albums.add", title="Add an album to your faves", token=True, sign=True,
              post=True, perms=WRITE, missing=AlbumNotFound, invalid=AlbumNotFound,
              errors=(OwnAlbum,))
def albums_add(call: Call, album_id: Annotated[int, "The album ID to add to your faves."]) -> dict:
    """Add an album the caller may see, and does not own, to the caller's faves.

    An album the caller may not see answers as a missing one (1); one's own album is 2. Adding
    a fave again changes nothing. The album's ``count faves`` goes up by one.
    """
    _fave(call, Album, album_id, AlbumNotFound, OwnAlbum)
    return {}


@group.method("faves.albums.remove", title="Remove an album from your faves", token=True,
              sign=True, post=True, perms=WRITE, missing=AlbumNotFound, invalid=AlbumNotFound)
def albums_remove(call: Call,
                  album_id: Annotated[int, "The album ID to remove from your faves."]) -> dict:
    """Remove an album from the caller's faves (also one hidden from the caller since).

    Removing an album that is not a fave changes nothing; one the caller may not see and never
    faved answers as a missing one (1).
    """
    _unfave(call, Album, album_id, AlbumNotFound)
    return {}


def _members(call: Call, user_id: str, owner_id: str) -> tuple[User, User | None]:
    """The member whose faves are listed (1 when unknown or closed; the caller by default) and
    the owner the list keeps to (2 when unknown or closed)."""
    faver = find_open_member(user_id) if user_id.strip() else call.user
    if faver is None:
        raise UserNotFound(user_id or "missing parameter user_id")
    owner = find_open_member(owner_id) if owner_id.strip() else None
    if owner_id.strip() and owner is None:
        raise OwnerNotFound(owner_id)
    return faver, owner


def _callers_contacts(caller: User | None, owner_ids: Sequence[int]) -> dict[int, Relation]:
    """The caller's own relations rows for these owners (how the caller counts them): one
    query, none when anonymous."""
    if caller is None or not owner_ids:
        return {}
    return {row.contact_id: row for row in Relation.select().where(
        Relation.user == caller.id, Relation.contact.in_(list(set(owner_ids))))}


def _owners_relations(caller: User | None, owner_ids: Sequence[int]) -> dict[int, Relation]:
    """How each owner counts the caller (family, friend): what ``can comment`` reads; one query."""
    if caller is None or not owner_ids:
        return {}
    return {row.user_id: row for row in Relation.select().where(
        Relation.user.in_(list(set(owner_ids))), Relation.contact == caller.id)}


@group.method("faves.docs.getList", title="Return a list of favorite documents for a given user",
              safety=True, perms=READ, missing=UserNotFound, invalid=FavesInvalidArgument,
              errors=(OwnerNotFound,), modified_at="1283378400",
              response='<docs total="12" per_page="20" page="1" pages="1"><doc doc_id media '
                       'license title isfamily isfriend iscontact><thumb/></doc></docs>')
def docs_get_list(call: Call, user_id: FaverId = "", owner_id: OwnerId = "",
                  safesurf: Safesurf = None,
                  extra: Annotated[str, extra_help(DOC_EXTRAS)] = "",
                  thumbsize: Thumbsize = "",
                  per_page: Annotated[int | None, DOCS_PAGE.per_page_help] = None,
                  page: Annotated[int | None, DOCS_PAGE.page_help] = None) -> dict:
    """Return the documents a member faved that the caller may see, latest faved first.

    Anyone's faves may be listed. Documents of closed members are left out; safesurf works as
    in doc.getList. ``isfamily``, ``isfriend`` and ``iscontact`` say how the caller counts each
    document's owner (all 0 for an anonymous caller), as network.getList's ``relation``. An
    unknown or closed member is 1, an unknown ``owner_id`` 2, an invalid value 3.
    """
    faver, owner = _members(call, user_id, owner_id)
    viewer = viewer_of(call)
    paged = DOCS_PAGE.page(page, per_page)
    query = (owned_docs()
             .switch(Doc).join(DocFave, on=(DocFave.doc == Doc.id))
             .where(DocFave.user == faver.id, User.status == "open", visible_to(Doc, viewer),
                    safesurf_clause(viewer, safesurf, FavesInvalidArgument),
                    *([Doc.owner == owner.id] if owner is not None else [])))
    docs = list(paged.apply(query.order_by(DocFave.faved_at.desc(), DocFave.id.desc())))
    contacts = _callers_contacts(call.user, [doc.owner_id for doc in docs])
    items = doc_trees(docs, call, parse_extra(extra, DOC_EXTRAS), parse_thumbsize(thumbsize))
    for doc, item in zip(docs, items, strict=True):
        row = contacts.get(doc.owner_id)
        item.update(isfamily=bool(row and row.is_family), isfriend=bool(row and row.is_friend),
                    iscontact=row is not None)
    return {"docs": {**paged.attrs(page_total(query, paged, len(items)), len(items)),
                     "doc": items}}


@group.method("faves.albums.getList", title="Return a list of favorite albums for a given user",
              perms=READ, missing=UserNotFound, errors=(OwnerNotFound,),
              response='<albums total per_page page count><album album_id link title user_id>'
                       '<dates/><count/><cover/><can fave comment/></album></albums>')
def albums_get_list(call: Call, user_id: FaverId = "", owner_id: OwnerId = "",
                    extra: Annotated[str, extra_help(ALBUM_EXTRAS)] = "",
                    thumbsize: Thumbsize = "",
                    per_page: Annotated[int | None, ALBUMS_PAGE.per_page_help] = None,
                    page: Annotated[int | None, ALBUMS_PAGE.page_help] = None) -> dict:
    """Return the albums a member faved that the caller may see, latest faved first.

    Anyone's faves may be listed; albums of closed members are left out. Each album's ``count``
    and ``cover`` show only the docs the caller may see, as album.getList. An unknown or closed
    member is 1, an unknown ``owner_id`` 2.
    """
    faver, owner = _members(call, user_id, owner_id)
    viewer = viewer_of(call)
    paged = ALBUMS_PAGE.page(page, per_page)
    query = (Album.select(Album, User)
             .join(User, on=(Album.owner == User.id))
             .switch(Album).join(AlbumFave, on=(AlbumFave.album == Album.id))
             .where(AlbumFave.user == faver.id, User.status == "open", visible_to(Album, viewer),
                    *([Album.owner == owner.id] if owner is not None else [])))
    albums = list(paged.apply(query.order_by(AlbumFave.faved_at.desc(), AlbumFave.id.desc())))
    counts = doc_counts([album.id for album in albums], viewer)
    cover_trees = covers(call, albums, parse_thumbsize(thumbsize))
    relations = _owners_relations(call.user, [album.owner_id for album in albums])
    with_owner = "owner" in parse_extra(extra, ALBUM_EXTRAS)
    items = []
    for album in albums:
        cover = cover_trees.get(album.id)
        items.append({
            **album_head(call, album), "user_id": album.owner_id,
            "owner": owner_tree(album.owner) if with_owner else None,
            "dates": {"created_at": album.created_at, "last_comment_at": album.comment_at,
                      "last_update_at": album.modified_at},
            "count": count_tree(album, counts.get(album.id), by_share=False),
            # The example names the cover's doc both ways: ``cover_id`` and ``doc_id``.
            "cover": {"cover_id": cover["doc_id"], **cover} if cover else None,
            "can": can_tree(call, album, relations.get(album.owner_id))})
    return {"albums": {**paged.attrs(page_total(query, paged, len(items)), len(items)),
                       "album": items}}
