"""folder.* (issue 13): spec shapes, flags as in PyIpernity's methods.json, owner-only changes,
visibility of the albums inside, counts and covers per caller, ordering, the album FK cascade,
concurrent adds, query counts, and every method called through PyIpernity."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from ipernity import IpernityAPI
from ipernity.exceptions import APIRequestError
from peewee import chunked

from api.methods.common import InvalidArgument, parse_ids
from api.models.docs import Album, AlbumDoc, Doc, Folder, FolderAlbum
from tests.conftest import TEST_DATABASE_URL
from tests.docs.methods_json import assert_listed_as_in_pyipernity
from tests.docs.shapes import compare

METHODS = ("folder.create", "folder.edit", "folder.delete", "folder.orderList", "folder.get",
           "folder.getList", "folder.albums.add", "folder.albums.remove",
           "folder.albums.getList")
COUNT_FRIEND = {"folder/count@friend"}  # getList's spelling, beside get's friends


@pytest.fixture
def make_album(as_user, owner, make_doc):
    """``make_album(share="public"|"private"|"family"|"friend", user=owner, docs=2)``: an album
    of public docs, the first its cover; the album shared as asked."""

    def make(share: str = "public", *, user: Any = None, docs: int = 2, **doc_fields: Any
             ) -> Album:
        user = user or owner
        made = [make_doc(user, **doc_fields) for _ in range(docs)]
        answer = as_user(user, "album.create", title=f"{share} album")["album"]
        if made:
            as_user(user, "album.docs.add", album_id=answer["album_id"],
                    doc_id=",".join(str(d.id) for d in made))
        flags = {"is_public": share == "public", "is_family": share == "family",
                 "is_friend": share == "friend"}
        Album.update(**flags).where(Album.id == answer["album_id"]).execute()
        return Album.get_by_id(answer["album_id"])

    return make


@pytest.fixture
def folder(as_user, owner):
    """``folder(*albums, title=…)``: an owner's folder holding these albums, in this order."""

    def make(*albums: Album, title: str = "Trips") -> int:
        folder_id = int(as_user(owner, "folder.create", title=title)["folder"]["folder_id"])
        if albums:
            add(as_user, owner, folder_id, *albums)
        return folder_id

    return make


def add(as_user, user, folder_id: int, *albums: Album | int) -> dict:
    ids = ",".join(str(a if isinstance(a, int) else a.id) for a in albums)
    return as_user(user, "folder.albums.add", folder_id=folder_id, album_id=ids)


def listed(answer: dict) -> list[int]:
    return [int(a["album_id"]) for a in answer["folder"]["albums"]["album"]]


def docs_of(album: Album) -> list[int]:
    return [e.doc_id for e in AlbumDoc.select().where(AlbumDoc.album == album)
            .order_by(AlbumDoc.position)]


def xml(call, token_for, user, method, **params) -> bytes:
    return call.raw(method, "xml", token=token_for(user, doc="delete"), **params).content


# --- shapes (method-shapes.md) and the registry --------------------------------------------------

def test_shapes(call, token_for, owner, make_album, folder):
    albums = [make_album(), make_album()]
    folder_id = folder(albums[0])
    new = xml(call, token_for, owner, "folder.create", title="New", description="d")
    # The example of a new (empty) folder has no cover; its owner is there as in edit and get.
    compare("folder.create", new, added=COUNT_FRIEND | {"folder/owner", "folder/owner@user_id",
                                                        "folder/owner@alias"})
    unknown = {"folder/cover@secret", "folder/cover@farm", "folder/cover@path",
               "folder/cover@icon"}  # nothing stored to show (as doc.get's thumbs)
    compare("folder.edit", xml(call, token_for, owner, "folder.edit", folder_id=folder_id,
                               title="Summer", cover_id=Album.get_by_id(albums[0].id).cover_id),
            added=COUNT_FRIEND, absent=unknown)
    compare("folder.get", xml(call, token_for, owner, "folder.get", folder_id=folder_id,
                              thumbsize="240"), added=COUNT_FRIEND, absent=unknown)
    compare("folder.getList", xml(call, token_for, owner, "folder.getList"),
            added={"folders@pages", "folders/folder/count@friends"})
    compare("folder.albums.add", xml(call, token_for, owner, "folder.albums.add",
                                     folder_id=folder_id,
                                     album_id=f"{albums[1].id},{albums[0].id},999"))
    compare("folder.albums.getList", xml(call, token_for, owner, "folder.albums.getList",
                                         folder_id=folder_id),
            added={"folder/albums@count", "folder/cover@doc_id"})
    compare("folder.albums.remove", xml(call, token_for, owner, "folder.albums.remove",
                                        folder_id=folder_id,
                                        album_id=f"{albums[1].id},999"))
    for method, params in (("folder.orderList", {"folder_ids": folder_id}),
                           ("folder.delete", {"folder_id": folder_id})):
        assert call(method, token=token_for(owner, doc="delete"), **params) == {
            "api": {"status": "ok"}}


def test_empty_lists_keep_their_item_key(call, as_user, owner, folder):
    token = {"token": None}
    mine = as_user(owner, "folder.getList", level="read")["folders"]
    assert mine == {"total": "0", "page": "1", "pages": "0", "per_page": "100", "count": "0",
                    "thumbsize": "75x", "can": {"create": "1"}, "folder": []}
    folder_id = folder()
    got = call("folder.albums.getList", folder_id=folder_id, **token)["folder"]
    assert got == {"folder_id": str(folder_id), "albums": {
        "total": "0", "page": "1", "pages": "0", "per_page": "20", "count": "0", "album": []}}


def test_flags_and_permissions_equal_pyipernity(call):
    assert_listed_as_in_pyipernity(call, METHODS)


# --- create, edit, delete: the owner only ------------------------------------------------------

def test_create_edit_and_their_errors(as_user, owner, make_album, folder):
    made = as_user(owner, "folder.create", title="  Trips ", description="Away")["folder"]
    assert (made["title"], made["description"]) == ("Trips", "Away")
    assert made["count"] == {"albums": "0", "public": "0", "family": "0", "friends": "0",
                             "friend": "0", "ff": "0"}
    assert made["link"].endswith(f"/doc/owner/album/{made['folder_id']}")
    assert made["owner"] == {"user_id": str(owner.id), "alias": "owner"}
    assert "cover" not in made
    for title in ("", "  ", "x" * 256):
        assert as_user(owner, "folder.create", title=title)["api"]["code"] == "2"
    assert as_user(owner, "folder.create")["api"]["code"] == "2"

    album = make_album()
    folder_id = int(made["folder_id"])
    add(as_user, owner, folder_id, album)
    edited = as_user(owner, "folder.edit", folder_id=folder_id, description="")["folder"]
    assert (edited["title"], edited["description"]) == ("Trips", "")  # absent kept, "" clears
    assert as_user(owner, "folder.edit", folder_id=folder_id, title=" ")["api"]["code"] == "2"
    assert Folder.get_by_id(folder_id).title == "Trips"
    outside = make_album()  # a doc of the owner's, but in none of the folder's albums
    assert as_user(owner, "folder.edit", folder_id=folder_id,
                   cover_id=outside.cover_id)["api"]["code"] == "2"
    assert as_user(owner, "folder.edit", folder_id=999)["api"]["code"] == "1"


def test_only_the_owner_changes_a_folder(as_user, owner, member, make_album, folder):
    album = make_album()
    folder_id = folder(album)
    theirs = make_album(user=member)
    for method, params in (("folder.edit", {"title": "Mine"}), ("folder.delete", {}),
                           ("folder.albums.add", {"album_id": theirs.id}),
                           ("folder.albums.remove", {"album_id": album.id})):
        assert as_user(member, method, folder_id=folder_id, **params)["api"]["code"] == "1"
    assert as_user(member, "folder.orderList", folder_ids=folder_id)["api"]["code"] == "1"
    # The owner adds only their own albums: another member's is skipped.
    answer = add(as_user, owner, folder_id, theirs, album)["folder"]
    assert (answer["added"], answer["skipped"], answer["total"]) == ("0", "2", "1")
    assert answer["album"] == [{"album_id": str(theirs.id), "added": "0"},
                               {"album_id": str(album.id), "added": "0"}]
    assert FolderAlbum.select().count() == 1


def test_add_remove_and_their_bounds(as_user, owner, make_album, folder):
    albums = [make_album() for _ in range(3)]
    folder_id = folder()
    answer = add(as_user, owner, folder_id, albums[0], albums[1], albums[0], 12345)["folder"]
    assert (answer["total"], answer["added"], answer["skipped"]) == ("2", "2", "1")
    removed = as_user(owner, "folder.albums.remove", folder_id=folder_id,
                      album_id=f"{albums[1].id},{albums[2].id}")["folder"]
    assert (removed["total"], removed["removed"], removed["skipped"]) == ("1", "1", "1")
    assert removed["album"] == [{"album_id": str(albums[1].id), "removed": "1"},
                                {"album_id": str(albums[2].id), "removed": "0"}]
    too_many = ",".join(str(n) for n in range(1, 502))
    for junk in (",", "a,b", too_many):
        assert as_user(owner, "folder.albums.add", folder_id=folder_id,
                       album_id=junk)["api"]["code"] == "2"
    # Not sent at all: the method's "missing" code, as album.docs.add's.
    assert as_user(owner, "folder.albums.add", folder_id=folder_id)["api"]["code"] == "1"
    assert Album.select().count() == 3  # the albums stay


def test_delete_keeps_the_albums(as_user, owner, make_album, folder):
    album = make_album()
    folder_id = folder(album)
    assert as_user(owner, "folder.delete", folder_id=folder_id)["api"]["status"] == "ok"
    assert as_user(owner, "folder.get", folder_id=folder_id)["api"]["code"] == "1"
    assert FolderAlbum.select().count() == 0 and Album.get_or_none(Album.id == album.id)
    assert as_user(owner, "folder.delete", folder_id=folder_id)["api"]["code"] == "1"


def test_deleting_an_album_takes_it_out_of_folders(as_user, owner, make_album, folder):
    kept, gone = make_album(), make_album()
    first, second = folder(gone, kept), folder(gone, title="Other")
    as_user(owner, "folder.edit", folder_id=first, cover_id=gone.cover_id)
    assert as_user(owner, "album.delete", album_id=gone.id)["api"]["status"] == "ok"
    assert [row.album_id for row in FolderAlbum.select()] == [kept.id]  # ON DELETE CASCADE
    got = as_user(owner, "folder.get", folder_id=first)["folder"]
    assert got["count"]["albums"] == "1"
    assert got["cover"]["doc_id"] == str(kept.cover_id)  # the chosen cover left with its album
    assert as_user(owner, "folder.get", folder_id=second)["folder"]["count"]["albums"] == "0"


# --- ordering ------------------------------------------------------------------------------------

def test_folders_in_the_owners_order(call, as_user, owner, member, folder):
    a, b, c = folder(title="A"), folder(title="B"), folder(title="C")

    def order() -> list[int]:
        return [int(f["folder_id"]) for f in call("folder.getList", user_id=owner.id)[
            "folders"]["folder"]]

    assert order() == [c, b, a]  # newest first until ordered, as albums
    assert as_user(owner, "folder.orderList", folder_ids=f"{a},{c}")["api"]["status"] == "ok"
    assert order() == [a, c, b]  # those left out follow in their order
    d = folder(title="D")
    assert order() == [d, a, c, b]  # a new one comes first
    theirs = int(as_user(member, "folder.create", title="X")["folder"]["folder_id"])
    for ids in (f"{a},{theirs}", "999", "x"):
        code = as_user(owner, "folder.orderList", folder_ids=ids)["api"]["code"]
        assert code == ("2" if ids == "x" else "1")
    assert order() == [d, a, c, b]


def test_order_list_takes_at_most_10000_ids(as_user, owner, folder):
    folder_id = folder()
    unknown = ",".join(str(n) for n in range(folder_id + 1, folder_id + 10_001))
    assert as_user(owner, "folder.orderList", folder_ids=unknown)["api"]["code"] == "1"
    assert as_user(owner, "folder.orderList",
                   folder_ids=f"{unknown},{folder_id}")["api"]["code"] == "2"  # 10,001 ids
    many_times = ",".join([str(folder_id)] * 10_000)  # one id, named again and again
    assert as_user(owner, "folder.orderList", folder_ids=many_times)["api"]["status"] == "ok"
    assert as_user(owner, "folder.orderList",  # items are counted, not different ids
                   folder_ids=f"{many_times},{folder_id}")["api"]["code"] == "2"


def test_a_list_is_read_only_up_to_its_cap():
    """Items count against the cap, so a body of one id repeated stops at the cap (it was read
    whole, 1 MiB in half a second inside the write's transaction); repeats still collapse."""
    assert parse_ids(" 3,1,,3, 2 ,1", 6) == [3, 1, 2]
    with pytest.raises(InvalidArgument, match="more than 3 ids"):
        parse_ids("1,1,1,1", 3)
    with pytest.raises(InvalidArgument, match="more than 10000 ids"):  # never reaches the x
        parse_ids("1," * 400_000 + "x", 10_000)
    with pytest.raises(InvalidArgument, match="more than 2 ids"):  # a blank item counts
        parse_ids("1, ,2", 2)


@pytest.mark.parametrize(("model", "method", "param"), [
    (Folder, "folder.orderList", "folder_ids"), (Album, "album.orderList", "album_ids")])
def test_order_lists_renumber_20000_rows_in_well_under_a_second(as_user, owner, model, method,
                                                                param):
    """One CASE branch per row made each row's update scan them all: 12.8 s for 20,000 folders,
    even naming one, with the write lock held; album.orderList besides looked each row up in
    the list asked for."""
    for rows in chunked(({"owner": owner.id, "title": f"t{n}", "created_at": 1,
                          "modified_at": 1} for n in range(20_000)), 1_000):
        model.insert_many(rows).execute()

    def order() -> list[int]:
        return [row.id for row in model.select(model.id, model.position)
                .order_by(model.position, model.id.desc())]

    before = order()
    for first in (before[-1:], before[::-2][:10_000]):
        named = set(first)
        started = time.perf_counter()
        got = as_user(owner, method, **{param: ",".join(map(str, first))})
        assert got == {"api": {"status": "ok"}} and time.perf_counter() - started < 2
        before = first + [row_id for row_id in before if row_id not in named]
        assert order() == before
    assert sorted(row.position for row in model.select(model.position)) == list(
        range(1, 20_001))


def test_a_huge_id_list_is_refused_at_once_and_blocks_no_one(as_user, owner, member, folder):
    """60,000 ids: each refused in one linear pass (it took 30 s, holding the write lock, while
    a repeat was looked for in a growing list), and another member's write goes through."""
    folder_id = folder()
    huge = ",".join(str(n) for n in range(1, 60_001))
    for method, params in (("folder.albums.add", {"folder_id": folder_id, "album_id": huge}),
                           ("folder.albums.remove", {"folder_id": folder_id, "album_id": huge}),
                           ("folder.orderList", {"folder_ids": huge})):
        started = time.perf_counter()
        answers = at_once([lambda method=method, params=params: as_user(owner, method, **params),
                           lambda: as_user(member, "folder.create", title="Meanwhile")])
        assert time.perf_counter() - started < 2, method
        assert sorted(a["api"].get("code", "ok") for a in answers) == ["2", "ok"], method
    assert FolderAlbum.select().count() == 0


def test_albums_in_the_order_they_were_added(call, as_user, owner, make_album, folder):
    a, b, c = make_album(), make_album(), make_album()
    folder_id = folder(b)
    add(as_user, owner, folder_id, c, a)
    assert listed(call("folder.albums.getList", folder_id=folder_id)) == [b.id, c.id, a.id]
    as_user(owner, "folder.albums.remove", folder_id=folder_id, album_id=b.id)
    add(as_user, owner, folder_id, b)  # back at the end
    assert listed(call("folder.albums.getList", folder_id=folder_id)) == [c.id, a.id, b.id]
    page = call("folder.albums.getList", folder_id=folder_id, per_page=2, page=2)["folder"]
    assert [int(x["album_id"]) for x in page["albums"]["album"]] == [b.id]
    assert {k: page["albums"][k] for k in ("total", "pages", "count")} == {
        "total": "3", "pages": "2", "count": "1"}
    # The first album's cover is the folder's until the owner chooses one of its docs.
    assert page["cover"]["album_id"] == str(c.id) and page["cover"]["doc_id"] == str(c.cover_id)
    a_docs = docs_of(a)
    as_user(owner, "folder.edit", folder_id=folder_id, cover_id=a_docs[-1])
    cover = call("folder.albums.getList", folder_id=folder_id)["folder"]["cover"]
    assert (cover["album_id"], cover["doc_id"]) == (str(a.id), str(a_docs[-1]))
    as_user(owner, "folder.edit", folder_id=folder_id, cover_id=0)  # back to the first album's
    assert call("folder.get", folder_id=folder_id)["folder"]["cover"]["doc_id"] == str(c.cover_id)


# --- visibility: counts and covers are the caller's ---------------------------------------------

def test_each_caller_sees_and_counts_only_the_albums_they_may_see(call, as_user, owner, member,
                                                                   stranger, relate, make_album,
                                                                   folder):
    private, family, friend, public = (make_album(share) for share in
                                       ("private", "family", "friend", "public"))
    folder_id = folder(private, family, friend, public)
    relate(owner, member, family=True)

    def seen(user: Any) -> tuple[list[int], dict[str, str]]:
        ask = (lambda m, **p: call(m, **p)) if user is None else (
            lambda m, **p: as_user(user, m, level="read", **p))
        count = ask("folder.get", folder_id=folder_id)["folder"]["count"]
        listed_count = ask("folder.getList", user_id="owner")["folders"]["folder"][0]["count"]
        assert listed_count == count
        return listed(ask("folder.albums.getList", folder_id=folder_id)), count

    albums, count = seen(owner)
    assert albums == [private.id, family.id, friend.id, public.id]
    # Each audience sees the public album and those shared with it.
    assert count == {"albums": "4", "public": "1", "family": "2", "friends": "2", "friend": "2",
                     "ff": "3"}
    albums, count = seen(member)
    assert albums == [family.id, public.id]
    assert count == {"albums": "2", "public": "1", "family": "2", "friends": "1", "friend": "1",
                     "ff": "2"}
    for nobody in (None, stranger):
        albums, count = seen(nobody)
        assert albums == [public.id] and count["albums"] == "1" and count["family"] == "1"
    # A token without doc:read sees what anyone sees.
    no_read = as_user(owner, "folder.get", level="write", folder_id=folder_id)
    assert no_read["folder"]["count"]["albums"] == "4"  # write includes read
    assert call("folder.getList", user_id="owner", empty=0)["folders"]["total"] == "1"
    hidden = folder(private, title="Private things")
    assert call("folder.get", folder_id=hidden)["folder"]["count"]["albums"] == "0"
    assert call("folder.getList", user_id="owner", empty=0)["folders"]["total"] == "1"
    assert call("folder.getList", user_id="owner")["folders"]["total"] == "2"


def test_a_cover_never_shows_what_the_caller_may_not_see(call, as_user, owner, make_album,
                                                          folder, make_doc):
    private, public = make_album("private"), make_album("public")
    folder_id = folder(private, public)
    as_user(owner, "folder.edit", folder_id=folder_id, cover_id=private.cover_id)

    def cover(user: Any = None, **params: Any) -> str | None:
        answers = [
            call("folder.get", folder_id=folder_id, **params) if user is None else
            as_user(user, "folder.get", level="read", folder_id=folder_id, **params),
            call("folder.getList", user_id="owner", **params) if user is None else
            as_user(user, "folder.getList", level="read", **params),
            call("folder.albums.getList", folder_id=folder_id, **params) if user is None else
            as_user(user, "folder.albums.getList", level="read", folder_id=folder_id,
                    **params)]
        found = {(a.get("folder") or a["folders"]["folder"][0]).get("cover", {}).get("doc_id")
                 for a in answers}
        assert len(found) == 1, found
        return found.pop()

    assert cover(owner) == str(private.cover_id)  # the owner's choice
    assert cover() == str(public.cover_id)  # the private album's doc is not shown to others
    # The chosen doc made private: the public album's own cover is shown instead.
    public_docs = docs_of(public)
    as_user(owner, "folder.edit", folder_id=folder_id, cover_id=public_docs[1])
    assert cover() == str(public_docs[1])
    Doc.update(is_public=False).where(Doc.id == public_docs[1]).execute()
    assert cover() == str(public.cover_id)
    # An adult cover is not shown at the default safesurf; the next visible one is.
    Doc.update(safety=3).where(Doc.id == public.cover_id).execute()
    assert cover() is None
    shown = call("folder.albums.getList", folder_id=folder_id, safesurf=2)["folder"]
    assert "cover" not in shown and "thumb" not in shown["albums"]["album"][0]
    assert cover(owner) == str(public_docs[1])  # the owner sees all of their own


# --- lists: queries, errors ----------------------------------------------------------------

def test_lists_do_not_query_per_row(call, as_user, owner, member, relate, make_album, folder,
                                    count_queries, token_for):
    relate(owner, member, friend=True)
    folder_ids: list[int] = []

    def fill(n: int) -> None:
        for share in ("public", "friend", "private")[:n] * (n // 3 or 1):
            album = make_album(share)
            folder_ids.append(folder(album, title=f"F{len(folder_ids)}"))
            add(as_user, owner, folder_ids[0], album)
        as_user(owner, "folder.edit", folder_id=folder_ids[-1],
                cover_id=Album.select().order_by(Album.id.desc()).first().cover_id)

    token = token_for(member, doc="read")

    def counted(method: str, **params: Any) -> int:
        with count_queries() as log:
            assert call(method, token=token, **params)["api"]["status"] == "ok"
        return len(log)

    lists = (("folder.getList", {"user_id": owner.id}),
             ("folder.albums.getList", {"folder_id": 1}))
    fill(3)
    small = {method: counted(method, **params) for method, params in lists}
    fill(9)
    assert len(call("folder.albums.getList", folder_id=1)["folder"]["albums"]["album"]) >= 4
    for method, params in lists:
        assert counted(method, **params) == small[method], method


def test_read_errors(call, as_user, owner, folder):
    folder_id = folder()
    assert call("folder.get", folder_id=999)["api"]["code"] == "1"
    assert call("folder.get", folder_id="x")["api"]["code"] == "1"
    assert call("folder.albums.getList", folder_id=999)["api"]["code"] == "1"
    assert call("folder.albums.getList", folder_id=folder_id, safesurf=9)["api"]["code"] == "2"
    assert call("folder.albums.getList", folder_id=folder_id, per_page=0)["api"]["code"] == "143"
    assert call("folder.getList")["api"]["code"] == "1"  # neither token nor user_id
    assert call("folder.getList", user_id="nobody")["api"]["code"] == "1"
    assert call("folder.getList", user_id="owner", empty="maybe")["api"]["code"] == "2"
    page = call("folder.getList", user_id="owner", per_page=500, thumbsize="500")["folders"]
    assert (page["per_page"], page["thumbsize"], page["can"]["create"]) == ("100", "500", "0")


def test_a_folder_id_naming_no_folder_is_code_1_in_every_method(as_user, owner, make_album,
                                                                 folder):
    album = make_album()
    folder_id = folder(album)
    methods = {"folder.get": {}, "folder.albums.getList": {}, "folder.edit": {"title": "T"},
               "folder.albums.add": {"album_id": album.id},
               "folder.albums.remove": {"album_id": album.id}, "folder.delete": {}}
    # Read as folder.orderList's folder_ids and folder.albums.add's album_id are: "+1" is no id.
    for junk in ("x", f"+{folder_id}", f"{folder_id}.0", f"{folder_id}x", "-1", "0x1",
                 "99999999999", "\u0661"):
        for method, params in methods.items():
            answer = as_user(owner, method, folder_id=junk, **params)
            assert answer["api"].get("code") == "1", (method, junk)
    assert as_user(owner, "folder.orderList", folder_ids=f"+{folder_id}")["api"]["code"] == "2"
    # Blanks around an id are read as in a comma list; another parameter's junk stays 2.
    assert as_user(owner, "folder.get", folder_id=f" {folder_id} ")["folder"]["title"] == "Trips"
    assert as_user(owner, "folder.edit", folder_id=folder_id, cover_id="x")["api"]["code"] == "2"
    assert as_user(owner, "folder.albums.getList", folder_id=folder_id,
                   safesurf="x")["api"]["code"] == "2"
    assert Folder.get_by_id(folder_id).title == "Trips"


# --- two clients at once -------------------------------------------------------------------

def at_once(calls: list[Any]) -> list[Any]:
    """Run the calls in threads released together; their answers."""
    start = threading.Barrier(len(calls))
    answers: list[Any] = []

    def run(one: Any) -> None:
        start.wait()
        answers.append(one())

    threads = [threading.Thread(target=run, args=(one,)) for one in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_two_clients_adding_one_album_at_once(live_server, api_key, owner, token_for, make_album,
                                              folder):
    folder_id = folder()
    apis = [IpernityAPI(api_key.key, api_key.secret, token=token_for(owner, doc="write"),
                        url=live_server.base_url + "/api/") for _ in range(2)]
    for round_ in range(1, 5):
        album = make_album(docs=1)
        answers = at_once([lambda api=api, album_id=album.id: api.folder.albums.add(
            folder_id=folder_id, album_id=album_id) for api in apis])
        assert sorted(a["folder"]["added"] for a in answers) == ["0", "1"]
        assert [a["folder"]["total"] for a in answers] == [str(round_)] * 2
        assert FolderAlbum.select().where(FolderAlbum.album == album.id).count() == 1
    assert FolderAlbum.select().where(FolderAlbum.folder == folder_id).count() == 4
    assert apis[0].folder.get(folder_id=folder_id)["folder"]["count"]["albums"] == "4"


def outcome(request: Any) -> str:
    """``ok``, or the error code a PyIpernity call answered."""
    try:
        request()
    except APIRequestError as error:
        return str(error.code)
    return "ok"


def until_waiting(watching: Any, count: int, worker: threading.Thread) -> None:
    """Return once ``count`` connections wait for a row lock (PostgreSQL), or ``worker`` ended,
    or 10 s went by; ``watching`` is an autocommit psycopg2 connection."""
    waited_for = time.monotonic() + 10
    with watching.cursor() as cursor:
        while worker.is_alive() and time.monotonic() < waited_for:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                           "'Lock' AND datname = current_database()")
            if cursor.fetchone()[0] >= count:
                return
            time.sleep(0.02)


def in_threads(*calls: Any) -> tuple[list[dict], list[threading.Thread]]:
    """Each call started in a thread of its own: where their answers go, and the threads."""
    answers: list[dict] = []
    threads = [threading.Thread(target=lambda one=one: answers.append(one())) for one in calls]
    for thread in threads:
        thread.start()
    return answers, threads


@pytest.fixture
def cover_everywhere(as_user, owner, make_album, folder):
    """A folder whose cover is a doc that is also the cover of another album, not yet in the
    folder: (folder id, that doc's id, that album)."""
    in_folder, elsewhere = make_album(), make_album(docs=0)
    folder_id = folder(in_folder)
    doc_id = docs_of(in_folder)[0]
    assert as_user(owner, "folder.edit", folder_id=folder_id, cover_id=doc_id)["folder"]
    as_user(owner, "album.docs.add", album_id=elsewhere.id, doc_id=doc_id)
    as_user(owner, "album.edit", album_id=elsewhere.id, cover_id=doc_id)
    assert Album.get_by_id(elsewhere.id).cover_id == doc_id
    return folder_id, doc_id, elsewhere


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="row locks: PostgreSQL only")
def test_a_doc_deleted_while_its_folder_takes_an_album_it_covers(
        settings, as_user, owner, cover_everywhere):
    """doc.delete first, then folder.albums.add, both real, held at their first lock each:
    doc.delete locked the album it covers, then its folder, folder.albums.add the folder, then
    the album, and they deadlocked (a 503). In one order (doc, folders, albums) one waits."""
    import psycopg2  # the postgres extra, installed where TEST_DATABASE_URL is set

    folder_id, doc_id, album = cover_everywhere
    gate, watching = (psycopg2.connect(settings.database_url) for _ in range(2))
    watching.autocommit = True
    try:
        with gate.cursor() as cursor:  # holds the album, so doc.delete stops at it
            cursor.execute("SELECT id FROM albums WHERE id = %s FOR UPDATE", (album.id,))
        answers, threads = in_threads(lambda: as_user(owner, "doc.delete", doc_id=doc_id))
        until_waiting(watching, 1, threads[0])
        more, added = in_threads(lambda: as_user(owner, "folder.albums.add",
                                                 folder_id=folder_id, album_id=album.id))
        until_waiting(watching, 2, added[0])
        gate.commit()
        for thread in threads + added:
            thread.join(timeout=30)
    finally:
        gate.close()
        watching.close()
    assert [a["api"]["status"] for a in answers + more] == ["ok", "ok"], answers + more
    assert Doc.get_or_none(Doc.id == doc_id) is None
    assert Folder.get_by_id(folder_id).cover_id is None
    assert FolderAlbum.get_or_none(FolderAlbum.album == album.id) is not None


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="row locks: PostgreSQL only")
def test_an_album_added_to_a_folder_while_the_doc_covering_both_is_deleted(
        settings, as_user, owner, cover_everywhere):
    """folder.albums.add first (its statements, held: the folder, then the album), then the
    real doc.delete: it waits for the folder before it touches the album, so the add gets the
    album, commits, and the delete follows (they deadlocked)."""
    import psycopg2

    folder_id, doc_id, album = cover_everywhere
    adding, watching = (psycopg2.connect(settings.database_url) for _ in range(2))
    watching.autocommit = True
    try:
        with adding.cursor() as cursor:
            cursor.execute("SELECT id FROM folders WHERE id = %s FOR UPDATE", (folder_id,))
            answers, threads = in_threads(lambda: as_user(owner, "doc.delete", doc_id=doc_id))
            until_waiting(watching, 1, threads[0])
            cursor.execute("SET lock_timeout = '5s'")  # a deadlock would fail here
            cursor.execute("SELECT id FROM albums WHERE id = %s FOR UPDATE", (album.id,))
            cursor.execute("INSERT INTO folder_albums (folder_id, album_id, position, added_at) "
                           "VALUES (%s, %s, 2, 0)", (folder_id, album.id))
        adding.commit()
        threads[0].join(timeout=30)
    finally:
        adding.close()
        watching.close()
    assert answers[0]["api"]["status"] == "ok", answers
    assert Doc.get_or_none(Doc.id == doc_id) is None
    assert Folder.get_by_id(folder_id).cover_id is None
    assert Album.get_by_id(album.id).cover_id is None


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="row locks: PostgreSQL only")
def test_choosing_a_cover_while_its_doc_is_being_deleted(as_user, owner, settings, make_album,
                                                          folder):
    """Another client's doc.delete caught mid-transaction: folder.edit waits for it, then finds
    the doc gone (2); it stored the cover and failed on the foreign key (500)."""
    import psycopg2  # the postgres extra, installed where TEST_DATABASE_URL is set

    album = make_album()
    folder_id = folder(album)
    doc_id = docs_of(album)[-1]
    deleting, watching = (psycopg2.connect(settings.database_url) for _ in range(2))
    watching.autocommit = True
    try:
        with deleting.cursor() as cursor:  # doc.delete's statements, uncommitted
            cursor.execute("SELECT id FROM docs WHERE id = %s FOR UPDATE", (doc_id,))
            cursor.execute("UPDATE albums SET cover_id = NULL WHERE cover_id = %s", (doc_id,))
            cursor.execute("DELETE FROM docs WHERE id = %s", (doc_id,))
        answers: list[dict] = []
        editing = threading.Thread(target=lambda: answers.append(as_user(
            owner, "folder.edit", folder_id=folder_id, cover_id=doc_id)))
        editing.start()
        until_waiting(watching, 1, editing)
        deleting.commit()
        editing.join()
    finally:
        deleting.close()
        watching.close()
    assert answers[0]["api"].get("code") == "2", answers
    assert Folder.get_by_id(folder_id).cover_id is None


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="row locks: PostgreSQL only")
def test_choosing_an_album_cover_while_its_doc_is_being_deleted(as_user, owner, settings,
                                                                make_album):
    """album.edit takes the doc's lock before the album's, as doc.delete does: it waits for a
    delete under way, then finds the doc gone (2); the other order deadlocked (503)."""
    import psycopg2  # the postgres extra, installed where TEST_DATABASE_URL is set

    album = make_album()
    doc_id = docs_of(album)[-1]
    deleting, watching = (psycopg2.connect(settings.database_url) for _ in range(2))
    watching.autocommit = True
    try:
        with deleting.cursor() as cursor:  # doc.delete's first statement, uncommitted
            cursor.execute("SELECT id FROM docs WHERE id = %s FOR UPDATE", (doc_id,))
        answers, threads = in_threads(lambda: as_user(owner, "album.edit", album_id=album.id,
                                                      cover_id=doc_id))
        until_waiting(watching, 1, threads[0])
        with deleting.cursor() as cursor:  # the rest of it: covers cleared, the doc gone
            cursor.execute("UPDATE albums SET cover_id = NULL WHERE cover_id = %s", (doc_id,))
            cursor.execute("DELETE FROM docs WHERE id = %s", (doc_id,))
        deleting.commit()
        threads[0].join(timeout=30)
    finally:
        deleting.close()
        watching.close()
    assert answers[0]["api"].get("code") == "2", answers
    assert Album.get_by_id(album.id).cover_id != doc_id


def test_choosing_a_cover_while_its_doc_is_deleted_live(live_server, api_key, owner, token_for,
                                                         make_album, make_doc, folder):
    """folder.edit cover_id and doc.delete of that doc at once: the edit answers ok or 2, the
    delete ok, never a 500 (a third of the rounds did on PostgreSQL)."""
    album = make_album(docs=1)
    folder_id = folder(album)
    apis = [IpernityAPI(api_key.key, api_key.secret, token=token_for(owner, doc="delete"),
                        url=live_server.base_url + "/api/") for _ in range(2)]
    seen: dict[tuple[str, str], int] = {}
    for round_ in range(60):
        doc_id = make_doc(owner).id
        apis[0].album.docs.add(album_id=album.id, doc_id=doc_id)

        def edit(doc_id: int = doc_id) -> str:
            return "edit " + outcome(lambda: apis[0].folder.edit(folder_id=folder_id,
                                                                  cover_id=doc_id))

        def delete(doc_id: int = doc_id, pause: float = 0.002 * (round_ % 5)) -> str:
            time.sleep(pause)
            return "delete " + outcome(lambda: apis[1].doc.delete(doc_id=doc_id))

        for answer in at_once([edit, delete]):
            name, code = answer.split()
            seen[name, code] = seen.get((name, code), 0) + 1
        assert Folder.get_by_id(folder_id).cover_id is None  # the doc went, and the choice
    assert set(seen) <= {("edit", "ok"), ("edit", "2"), ("delete", "ok")}, seen
    assert seen["delete", "ok"] == 60


# --- PyIpernity ----------------------------------------------------------------------------------

def test_every_method_through_pyipernity(live_server, api_key, owner, member, token_for,
                                         make_album):
    api = IpernityAPI(api_key.key, api_key.secret, token=token_for(owner, doc="delete"),
                      url=live_server.base_url + "/api/")
    albums = [make_album() for _ in range(3)]
    made = [api.folder.create(title=f"Folder {n}")["folder"] for n in range(3)]
    first = made[0]["folder_id"]
    added = api.folder.albums.add(folder_id=first,
                                  album_id=",".join(str(a.id) for a in albums))["folder"]
    assert added["added"] == "3"
    api.folder.edit(folder_id=first, title="Trips", cover_id=albums[1].cover_id)
    assert api.folder.get(folder_id=first)["folder"]["cover"]["doc_id"] == str(albums[1].cover_id)
    api.folder.orderList(folder_ids=",".join(f["folder_id"] for f in made))
    walked = list(api.walk_folders(per_page=2))  # user_id: the token's
    assert [f["folder_id"] for f in walked] == [f["folder_id"] for f in made]
    assert api.folder.getList(user_id=owner.id)["folders"]["total"] == "3"
    in_folder = list(api.walk_folder_albums(first, per_page=2))
    assert [a["album_id"] for a in in_folder] == [str(a.id) for a in albums]
    assert in_folder[0]["thumb"]["url"].startswith(live_server.base_url)
    assert api.folder.albums.getList(folder_id=first)["folder"]["cover"]["album_id"] == str(
        albums[1].id)
    api.folder.albums.remove(folder_id=first, album_id=albums[0].id)
    api.folder.delete(folder_id=made[2]["folder_id"])
    assert api.folder.getList()["folders"]["total"] == "2"
    anonymous = IpernityAPI(api_key.key, api_key.secret, url=live_server.base_url + "/api/")
    assert anonymous.folder.get(folder_id=first)["folder"]["count"]["albums"] == "2"
