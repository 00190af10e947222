"""faves.docs.*, faves.albums.*, doc.getFaves, album.getFaves (issue 13): shapes, flags as in
PyIpernity's methods.json, counts kept equal to the fave rows (also with many clients at once,
through a real server), visibility, closed members, errors, query counts, and each method called
through PyIpernity."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest
import requests
from ipernity import IpernityAPI

from api.models.docs import Album, AlbumDoc, AlbumFave, Doc, DocFave
from api.signing import md5
from keys import store
from keys.models import User
from tests.docs.methods_json import assert_listed_as_in_pyipernity
from tests.docs.shapes import compare, our_names

NEW_METHODS = ("faves.docs.add", "faves.docs.remove", "faves.docs.getList", "faves.albums.add",
               "faves.albums.remove", "faves.albums.getList", "doc.getFaves", "album.getFaves")
FAVE = ("user_id", "username", "faved_at")
PAGING = ("total", "page", "pages", "per_page", "count")


@pytest.fixture
def writer(call, token_for):
    """``writer(user, "faves.docs.add", doc_id=…)``: a JSON call with a doc:write token."""

    def run(user: User, method: str, **params: Any) -> dict:
        return call(method, token=token_for(user, doc="write"), **params)

    return run


@pytest.fixture
def make_album(make_doc):
    """``make_album(owner, docs=2, **fields)``: an album holding ``docs`` new docs of its owner."""
    counter = itertools.count(1)

    def make(owner: User, *, docs: int = 2, **fields: Any) -> Album:
        album = Album.create(owner=owner, title=f"Album {next(counter)}", created_at=1,
                             modified_at=2, **fields)
        for position in range(docs):
            AlbumDoc.create(album=album, doc=make_doc(owner), position=position + 1)
        return album

    return make


def members(*names: str) -> list[User]:
    """Open members, named as given."""
    return [store.add_user(name, f"{name}-password-long") for name in names]


def close(user: User) -> None:
    User.update(status="closed").where(User.id == user.id).execute()


def ids(answer: dict, items: str = "docs", key: str = "doc_id") -> list[int]:
    return [int(item[key]) for item in answer[items][items[:-1]]]


def favers(answer: dict) -> list[str]:
    return [fave["username"] for fave in answer["faves"]["fave"]]


def counts_of(call, token: str, doc: Doc, faver: User) -> tuple[str, str, str, int, int]:
    """doc.get's ``count faves``, doc.getFaves' total, faves.docs.getList's total of ``faver``,
    the stored counter and the fave rows."""
    stored = Doc.get_by_id(doc.id).faves
    rows = DocFave.select().where(DocFave.doc == doc.id).count()
    return (call("doc.get", token=token, doc_id=doc.id)["doc"]["count"]["faves"],
            call("doc.getFaves", token=token, doc_id=doc.id)["faves"]["total"],
            call("faves.docs.getList", token=token, user_id=faver.id)["docs"]["total"],
            stored, rows)


# --- shapes (method-shapes.md) and the registry --------------------------------------------------

def test_shapes(call, owner, member, make_doc, make_album, writer, token_for):
    doc, album = make_doc(owner), make_album(owner)
    token = token_for(member, doc="write")
    for method, params in (("faves.docs.add", {"doc_id": doc.id}),
                           ("faves.albums.add", {"album_id": album.id}),
                           ("faves.docs.remove", {"doc_id": doc.id}),
                           ("faves.albums.remove", {"album_id": album.id})):
        # No payload: the reply is <api status="ok"/> alone.
        assert our_names(call.raw(method, "xml", token=token, **params).content) == set()
    writer(member, "faves.docs.add", doc_id=doc.id)
    writer(member, "faves.albums.add", album_id=album.id)
    compare("doc.getFaves", call.raw("doc.getFaves", "xml", doc_id=doc.id).content)
    compare("album.getFaves", call.raw("album.getFaves", "xml", album_id=album.id).content)
    compare("faves.docs.getList", call.raw("faves.docs.getList", "xml", token=token).content,
            added={"docs@count", "docs/doc@safety"})
    compare("faves.albums.getList", call.raw("faves.albums.getList", "xml",
                                             token=token).content, added={"albums@pages"})
    compare("faves.albums.getList", call.raw("faves.albums.getList", "xml", token=token,
                                             extra="owner").content,
            added={"albums@pages", "albums/album/owner",
                   *(f"albums/album/owner@{a}" for a in ("user_id", "username", "realname"))})


def test_empty_lists_keep_their_item_key(call, owner, make_doc, make_album, token_for):
    token = token_for(owner, doc="read")
    empty = {"total": "0", "page": "1", "pages": "0", "count": "0"}
    assert call("faves.docs.getList", token=token)["docs"] == {**empty, "per_page": "20",
                                                               "doc": []}
    assert call("faves.albums.getList", token=token)["albums"] == {**empty, "per_page": "20",
                                                                   "album": []}
    assert call("doc.getFaves", doc_id=make_doc(owner).id)["faves"] == {
        **empty, "per_page": "10", "fave": []}
    assert call("album.getFaves", album_id=make_album(owner).id)["faves"] == {
        **empty, "per_page": "10", "fave": []}


def test_flags_and_permissions_equal_pyipernity(call):
    assert_listed_as_in_pyipernity(call, NEW_METHODS)


# --- documents -----------------------------------------------------------------------------------

def test_add_and_remove_round_trip_keeps_every_count_equal(call, owner, member,
                                                           make_doc, writer, token_for):
    third, = members("third")
    doc = make_doc(owner)
    token = token_for(owner, doc="read")
    assert counts_of(call, token, doc, member) == ("0", "0", "0", 0, 0)
    assert writer(member, "faves.docs.add", doc_id=doc.id)["api"]["status"] == "ok"
    assert counts_of(call, token, doc, member) == ("1", "1", "1", 1, 1)
    assert writer(member, "faves.docs.add", doc_id=doc.id)["api"]["status"] == "ok"  # again
    assert counts_of(call, token, doc, member) == ("1", "1", "1", 1, 1)
    writer(third, "faves.docs.add", doc_id=doc.id)
    assert counts_of(call, token, doc, member) == ("2", "2", "1", 2, 2)
    assert favers(call("doc.getFaves", doc_id=doc.id)) == ["third", "member"]  # latest first
    assert writer(member, "faves.docs.remove", doc_id=doc.id)["api"]["status"] == "ok"
    assert counts_of(call, token, doc, member) == ("1", "1", "0", 1, 1)
    assert writer(member, "faves.docs.remove", doc_id=doc.id)["api"]["status"] == "ok"  # again
    assert counts_of(call, token, doc, member) == ("1", "1", "0", 1, 1)


def test_doc_get_says_can_fave_and_isfave(call, owner, member, make_doc, writer, token_for):
    doc = make_doc(owner)

    def seen(user: User) -> tuple[str, str]:
        got = call("doc.get", token=token_for(user, doc="read"), doc_id=doc.id)["doc"]
        return got["can"]["fave"], got["you"]["isfave"]

    assert seen(member) == ("1", "0")
    writer(member, "faves.docs.add", doc_id=doc.id)
    assert seen(member) == ("1", "1")
    assert seen(owner) == ("0", "0")  # one's own doc is never a fave
    anonymous = call("doc.get", doc_id=doc.id)["doc"]
    assert anonymous["can"]["fave"] == "0" and "you" not in anonymous


def test_faving_a_doc_one_cannot_see_is_refused_as_a_missing_doc(call, owner, member, make_doc,
                                                                relate, writer):
    private = make_doc(owner, is_public=False)
    friends = make_doc(owner, is_public=False, is_friend=True)
    for doc in (private, friends):
        assert writer(member, "faves.docs.add", doc_id=doc.id)["api"]["code"] == "1"
        assert writer(member, "faves.docs.remove", doc_id=doc.id)["api"]["code"] == "1"
    assert writer(member, "faves.docs.add", doc_id=999_999)["api"]["code"] == "1"
    assert Doc.get_by_id(friends.id).faves == 0 and DocFave.select().count() == 0
    relate(owner, member, friend=True)
    assert writer(member, "faves.docs.add", doc_id=friends.id)["api"]["status"] == "ok"
    assert Doc.get_by_id(friends.id).faves == 1


@pytest.mark.parametrize(("params", "code"), [({}, "1"), ({"doc_id": "x"}, "1"),
                                              ({"doc_id": -1}, "1")])
def test_doc_fave_errors(writer, member, params, code):
    for method in ("faves.docs.add", "faves.docs.remove"):
        assert writer(member, method, **params)["api"]["code"] == code


def test_own_doc_and_who_may_fave(call, owner, member, make_doc, writer, token_for):
    doc = make_doc(owner)
    assert writer(owner, "faves.docs.add", doc_id=doc.id)["api"]["code"] == "2"
    assert call("faves.docs.add", doc_id=doc.id)["api"]["code"] == "106"
    denied = call("faves.docs.add", token=token_for(member, doc="read"), doc_id=doc.id)
    assert denied["api"]["code"] == "110"
    assert call("faves.docs.add", token=token_for(member, doc="write"), doc_id=doc.id,
                http="GET")["api"]["code"] == "120"
    assert Doc.get_by_id(doc.id).faves == 0


def test_a_fave_stays_when_its_doc_hides_but_is_listed_only_to_whom_may_see_it(
        call, owner, member, make_doc, writer, token_for):
    third, = members("third")
    doc = make_doc(owner)
    writer(member, "faves.docs.add", doc_id=doc.id)
    Doc.update(is_public=False).where(Doc.id == doc.id).execute()

    def listed(user: User | None) -> list[int]:
        token = {"token": token_for(user, doc="read")} if user else {}
        return ids(call("faves.docs.getList", user_id=member.id, **token))

    assert (listed(None), listed(third), listed(member)) == ([], [], [])
    assert listed(owner) == [doc.id]  # its owner still sees it
    owners = token_for(owner, doc="read")
    assert call("doc.getFaves", token=owners, doc_id=doc.id)["faves"]["total"] == "1"
    assert call("doc.getFaves", doc_id=doc.id)["api"]["code"] == "1"
    assert Doc.get_by_id(doc.id).faves == 1
    # The faver may still take it back, though the doc is hidden from them now.
    assert writer(member, "faves.docs.remove", doc_id=doc.id)["api"]["status"] == "ok"
    assert Doc.get_by_id(doc.id).faves == 0 and DocFave.select().count() == 0


def test_closed_members_are_left_out(call, owner, member, make_doc, writer):
    gone, = members("gone")
    doc, closed_owners = make_doc(owner), make_doc(gone)
    for user in (member, gone):
        writer(user, "faves.docs.add", doc_id=doc.id)
    writer(member, "faves.docs.add", doc_id=closed_owners.id)
    close(gone)
    assert favers(call("doc.getFaves", doc_id=doc.id)) == ["member"]
    assert call("doc.getFaves", doc_id=doc.id)["faves"]["total"] == "1"
    assert ids(call("faves.docs.getList", user_id="member")) == [doc.id]
    assert call("faves.docs.getList", user_id="gone")["api"]["code"] == "1"
    # A closed member's doc or album can no longer be faved: no list would show that fave.
    album = Album.create(owner=gone, title="Gone's")
    for method, param, row_id in (("faves.docs.add", "doc_id", closed_owners.id),
                                  ("faves.albums.add", "album_id", album.id)):
        assert writer(member, method, **{param: row_id})["api"]["code"] == "1"
    assert Album.get_by_id(album.id).faves == 0


def test_docs_list_filters_extras_and_relations(call, owner, member, make_doc, relate,
                                                writer, token_for, clock):
    other, = members("other")
    adult = make_doc(owner, safety=3)
    mine = [make_doc(owner) for _ in range(2)]
    others = make_doc(other)
    for doc in (adult, *mine, others):
        clock.advance(1)
        writer(member, "faves.docs.add", doc_id=doc.id)
    relate(member, owner, family=True)  # member counts owner as family
    token = token_for(member, doc="read")
    got = call("faves.docs.getList", token=token)  # user_id: the token's
    assert ids(got) == [others.id, mine[1].id, mine[0].id]  # safesurf 1 by default
    by_id = {int(d["doc_id"]): d for d in got["docs"]["doc"]}
    assert {k: by_id[mine[0].id][k] for k in ("isfamily", "isfriend", "iscontact")} == {
        "isfamily": "1", "isfriend": "0", "iscontact": "1"}
    assert by_id[others.id]["iscontact"] == "0"
    assert ids(call("faves.docs.getList", token=token, safesurf=3))[-1] == adult.id
    assert ids(call("faves.docs.getList", user_id="member", owner_id="owner",
                    safesurf=3)) == [mine[1].id, mine[0].id]  # anonymous: safesurf 2 at most
    assert ids(call("faves.docs.getList", token=token, owner_id=other.id)) == [others.id]
    item = call("faves.docs.getList", token=token, extra="owner,dates,count,geo,medias,original",
                thumbsize="240")["docs"]["doc"][0]
    assert {"owner", "dates", "count", "medias"} <= set(item)  # no original: copyrighted
    assert item["thumb"]["label"] == "240" and item["owner"]["username"] == "other"
    assert item["count"]["faves"] == "1"


@pytest.mark.parametrize(("params", "code"), [
    ({}, "1"), ({"user_id": "nobody"}, "1"), ({"user_id": "member", "owner_id": "nobody"}, "2"),
    ({"user_id": "member", "safesurf": 7}, "3"), ({"user_id": "member", "safesurf": "x"}, "3"),
    ({"user_id": "member", "per_page": "x"}, "143"),
    ({"user_id": "member", "page": 0}, "143")])
def test_list_errors(call, member, params, code):
    for method in ("faves.docs.getList", "faves.albums.getList"):
        if method == "faves.albums.getList" and "safesurf" in params:
            continue
        assert call(method, **params)["api"]["code"] == code, method


def test_paging(call, owner, make_doc, writer):
    doc = make_doc(owner)
    fans = members(*(f"fan{n:02d}" for n in range(25)))
    for fan in fans:
        writer(fan, "faves.docs.add", doc_id=doc.id)
    got = call("doc.getFaves", doc_id=doc.id, page=3)["faves"]
    assert {k: got[k] for k in PAGING} == {"total": "25", "page": "3", "pages": "3",
                                           "per_page": "10", "count": "5"}
    assert call("doc.getFaves", doc_id=doc.id, per_page=500)["faves"]["per_page"] == "100"
    past = call("doc.getFaves", doc_id=doc.id, page=9)["faves"]
    assert (past["total"], past["fave"]) == ("25", [])
    docs = [make_doc(owner) for _ in range(25)]
    for item in docs:
        writer(fans[0], "faves.docs.add", doc_id=item.id)
    listed = call("faves.docs.getList", user_id=fans[0].id, page=2)["docs"]
    assert {k: listed[k] for k in PAGING} == {"total": "26", "page": "2", "pages": "2",
                                              "per_page": "20", "count": "6"}
    assert call("faves.docs.getList", user_id=fans[0].id, per_page=500)["docs"][
        "per_page"] == "100"


# --- albums --------------------------------------------------------------------------------------

def test_album_round_trip_and_visibility(call, owner, member, make_album, relate,
                                         writer, token_for):
    third, = members("third")
    album, hidden = make_album(owner), make_album(owner, is_public=False, is_friend=True)

    def seen(user: User, row: Album) -> dict:
        return call("album.get", token=token_for(user, doc="read"), album_id=row.id)["album"]

    assert (seen(member, album)["can"]["fave"], seen(member, album)["you"]["isfave"]) == ("1",
                                                                                        "0")
    assert writer(member, "faves.albums.add", album_id=album.id)["api"]["status"] == "ok"
    writer(member, "faves.albums.add", album_id=album.id)  # again: nothing changes
    writer(third, "faves.albums.add", album_id=album.id)
    assert seen(member, album)["you"]["isfave"] == "1"
    assert seen(owner, album)["count"]["faves"] == "2" and seen(owner, album)["can"][
        "fave"] == "0"
    assert favers(call("album.getFaves", album_id=album.id)) == ["third", "member"]
    assert ids(call("faves.albums.getList", user_id="member"), "albums", "album_id") == [
        album.id]
    assert writer(member, "faves.albums.remove", album_id=album.id)["api"]["status"] == "ok"
    writer(member, "faves.albums.remove", album_id=album.id)  # again
    assert Album.get_by_id(album.id).faves == 1 == AlbumFave.select().count()
    assert call("album.getFaves", album_id=album.id)["faves"]["total"] == "1"
    # Hidden from member until owner counts member as friend; one's own album is 2.
    assert writer(member, "faves.albums.add", album_id=hidden.id)["api"]["code"] == "1"
    assert writer(owner, "faves.albums.add", album_id=album.id)["api"]["code"] == "2"
    assert writer(member, "faves.albums.add", album_id=999_999)["api"]["code"] == "1"
    relate(owner, member, friend=True)
    writer(member, "faves.albums.add", album_id=hidden.id)
    assert ids(call("faves.albums.getList", user_id="member"), "albums", "album_id") == []
    mine = call("faves.albums.getList", token=token_for(member, doc="read"))
    assert ids(mine, "albums", "album_id") == [hidden.id]
    item = mine["albums"]["album"][0]
    assert item["user_id"] == str(owner.id) and item["count"]["faves"] == "1"
    assert item["count"]["docs"] == "2" and item["cover"]["cover_id"] == item["cover"]["doc_id"]
    assert item["can"] == {"fave": "1", "comment": "1"}
    assert call("album.getFaves", album_id=hidden.id)["api"]["code"] == "1"


# --- no query per row ---------------------------------------------------------------------------

# key and token, then: the page, the total, relations, thumbs (docs); the page, the total, doc
# counts, covers (3), relations (albums); the doc or album, the page, the total (getFaves).
@pytest.mark.parametrize(("method", "items", "most"), [
    ("faves.docs.getList", "docs", 6), ("faves.albums.getList", "albums", 9),
    ("doc.getFaves", "faves", 5), ("album.getFaves", "faves", 5)])
def test_no_query_per_row(method, items, most, call, owner, member, make_doc, make_album,
                          relate, count_queries, token_for):
    doc, album = make_doc(owner), make_album(owner)
    for n, user in enumerate(members(*(f"user{n:02d}" for n in range(32)))):
        if n % 2:
            relate(member, user, friend=n % 3 == 0)  # member counts half of them
        relate(user, member, family=True, friend=n % 3 == 0)
        DocFave.create(user=user, doc=doc)
        AlbumFave.create(user=user, album=album)
        DocFave.create(user=member, doc=make_doc(user))
        AlbumFave.create(user=member, album=make_album(user, is_public=False, is_family=True))
    params = {"doc_id": doc.id} if method == "doc.getFaves" else {"album_id": album.id} \
        if method == "album.getFaves" else {"extra": ",".join(("owner", "dates", "count", "geo",
                                                                "medias", "original"))}
    token = token_for(member, doc="read")
    call(method, token=token, **params)  # warm-up: first use of a token may write (last used)
    counts = []
    for n in (2, 30):
        with count_queries() as log:
            got = call(method, token=token, per_page=n, **params)
        assert len(got[items][items[:-1]]) == n
        counts.append(len(log))
    assert counts[0] == counts[1]
    assert counts[1] <= most, counts


# --- many clients at once, through a real server -------------------------------------------------

def test_many_clients_faving_at_once_leave_exact_counts(live_server, api_key, owner,
                                                        make_doc, make_album, token_for):
    doc, album = make_doc(owner), make_album(owner)
    fans = members(*(f"fan{n}" for n in range(8)))
    tokens = [token_for(fan, doc="write") for fan in fans]
    failures: list[str] = []
    start = threading.Barrier(len(fans))

    def post(session: requests.Session, token: str, method: str, **params: Any) -> None:
        values = {"api_key": api_key.key, "auth_token": token,
                  **{name: str(value) for name, value in params.items()}}
        values["api_sig"] = md5.signature(values, method, api_key.secret)
        reply = session.post(f"{live_server.base_url}/api/{method}/json", data=values,
                             timeout=60)
        if reply.status_code != 200 or reply.json()["api"]["status"] != "ok":
            failures.append(f"{method}: {reply.status_code} {reply.text[:200]}")

    def client(token: str, rounds: list[tuple[str, str]]) -> None:
        with requests.Session() as session:
            start.wait()
            for method, target in rounds:
                post(session, token, method, **({"doc_id": doc.id} if target == "doc"
                                                else {"album_id": album.id}))

    def run(rounds: list[tuple[str, str]]) -> None:
        threads = [threading.Thread(target=client, args=(token, rounds)) for token in tokens]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []

    # Each client faves twice, takes it back, removes again (not a fave), faves twice more.
    churn = [("faves.docs.add", "doc"), ("faves.albums.add", "album"),
             ("faves.docs.add", "doc"), ("faves.albums.add", "album"),
             ("faves.docs.remove", "doc"), ("faves.albums.remove", "album"),
             ("faves.docs.remove", "doc"), ("faves.albums.remove", "album"),
             ("faves.docs.add", "doc"), ("faves.albums.add", "album"),
             ("faves.docs.add", "doc"), ("faves.albums.add", "album")]
    run(churn)
    assert Doc.get_by_id(doc.id).faves == len(fans) == DocFave.select().count()
    assert Album.get_by_id(album.id).faves == len(fans) == AlbumFave.select().count()
    run([("faves.docs.remove", "doc"), ("faves.albums.remove", "album")] * 2)
    assert Doc.get_by_id(doc.id).faves == 0 == DocFave.select().count()
    assert Album.get_by_id(album.id).faves == 0 == AlbumFave.select().count()


# --- through PyIpernity --------------------------------------------------------------------------

def test_every_new_method_through_pyipernity(live_server, api_key, owner, member, make_doc,
                                             make_album, token_for):
    doc, album = make_doc(owner), make_album(owner)
    api = IpernityAPI(api_key.key, api_key.secret, token=token_for(member, doc="write"),
                      url=live_server.base_url + "/api/")
    api.faves.docs.add(doc_id=doc.id)
    api.faves.albums.add(album_id=album.id)
    listed = api.faves.docs.getList()["docs"]  # user_id: the token's
    assert [d["doc_id"] for d in listed["doc"]] == [str(doc.id)] and listed["total"] == "1"
    walked = list(api.walk_data("faves.docs.getList", "docs.doc", user_id=member.id,
                                per_page=1))
    assert [d["doc_id"] for d in walked] == [str(doc.id)]
    albums = api.faves.albums.getList(user_id=member.id)["albums"]["album"]
    assert [a["album_id"] for a in albums] == [str(album.id)]
    assert [f["user_id"] for f in api.doc.getFaves(doc_id=doc.id)["faves"]["fave"]] == [
        str(member.id)]
    assert api.album.getFaves(album_id=album.id)["faves"]["total"] == "1"
    assert api.doc.get(doc_id=doc.id)["doc"]["you"]["isfave"] == "1"
    api.faves.docs.remove(doc_id=doc.id)
    api.faves.albums.remove(album_id=album.id)
    assert api.doc.get(doc_id=doc.id)["doc"]["count"]["faves"] == "0"
    assert api.album.get(album_id=album.id)["album"]["count"]["faves"] == "0"
