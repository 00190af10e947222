"""album.*, doc.albums.add, doc.getContainers: spec shapes, codes, visibility, paging."""

from __future__ import annotations

import pytest

from api.models.docs import Album, AlbumDoc, Doc
from tests.docs.shapes import compare


@pytest.fixture
def album(as_user, owner, make_doc):
    """An album of the owner's holding three docs, the first as cover."""
    docs = [make_doc(owner) for _ in range(3)]
    answer = as_user(owner, "album.create", title="Summer", description="Sea", cover_id=docs[0].id)
    album_id = int(answer["album"]["album_id"])
    as_user(owner, "album.docs.add", album_id=album_id, doc_id=",".join(str(d.id) for d in docs))
    return Album.get_by_id(album_id), docs


def xml(call, token_for, user, method, **params):
    return call.raw(method, "xml", token=token_for(user, doc="delete"), **params).content


def entries(album_id: int) -> list[int]:
    return [e.doc_id for e in AlbumDoc.select().where(AlbumDoc.album == album_id)
            .order_by(AlbumDoc.position)]


# --- shapes ------------------------------------------------------------------------------------

def test_write_shapes_match_the_spec(call, token_for, owner, make_doc, album):
    row, docs = album
    extra = make_doc(owner)
    compare("album.create", xml(call, token_for, owner, "album.create", title="T",
                                cover_id=extra.id))
    # Live clients read album.edit's cover as doc_id, album.docs.setList's rows under docs.
    compare("album.edit", xml(call, token_for, owner, "album.edit", album_id=row.id,
                              title="New", cover_id=docs[1].id), added={"album/cover@doc_id"})
    compare("album.docs.add", xml(call, token_for, owner, "album.docs.add", album_id=row.id,
                                  doc_id=f"{extra.id},{docs[0].id},999"))
    compare("album.docs.remove", xml(call, token_for, owner, "album.docs.remove",
                                     album_id=row.id, doc_id=f"{extra.id},999"))
    compare("album.docs.setList", xml(call, token_for, owner, "album.docs.setList",
                                      album_id=row.id, doc_ids=f"{docs[2].id},{docs[0].id},999",
                                      cover_id=docs[0].id),
            added={"album/docs", "album/docs@doc_id", "album/docs@added", "album/docs@error"})


def test_read_shapes_match_the_spec(call, token_for, owner, member, album):
    row, docs = album
    call("album.get", token=token_for(member, doc="read"), album_id=row.id)  # one visit
    compare("album.get", xml(call, token_for, owner, "album.get", album_id=row.id))
    compare("album.getList", xml(call, token_for, owner, "album.getList"),
            added={"albums@pages", "albums/album/owner",  # owner: live clients read it
                   *(f"albums/album/owner@{a}" for a in ("user_id", "username", "realname"))})
    compare("album.docs.getList", xml(call, token_for, owner, "album.docs.getList",
                                      album_id=row.id), added={"album/docs@count"})
    compare("album.docs.getContext", xml(call, token_for, owner, "album.docs.getContext",
                                         album_id=row.id, doc_id=docs[1].id))
    # We count authenticated visits only, so the spec's <anonymous> line never appears.
    compare("album.getVisitors", xml(call, token_for, owner, "album.getVisitors",
                                     album_id=row.id),
            absent={"visits/anonymous", "visits/anonymous@visited_at",
                    "visits/anonymous@visits"})
    group_names = {"groups/group", *(f"groups/group@{a}" for a in (
        "cover", "docs", "group_id", "invited", "link", "pending", "title"))}
    compare("doc.getContainers", xml(call, token_for, owner, "doc.getContainers",
                                     doc_id=docs[0].id), absent=group_names)


def test_no_payload_methods(as_user, owner, album):
    row, _docs = album
    assert as_user(owner, "album.setPerms", album_id=row.id, perm_comment=3) == {
        "api": {"status": "ok"}}
    assert as_user(owner, "album.orderList", album_ids=row.id) == {"api": {"status": "ok"}}
    assert as_user(owner, "album.delete", album_id=row.id) == {"api": {"status": "ok"}}


# --- behaviour ---------------------------------------------------------------------------------

def test_create_and_edit(as_user, owner, make_doc):
    doc = make_doc(owner)
    made = as_user(owner, "album.create", title="  Trip ", perm_comment=2)["album"]
    assert made["title"] == "Trip" and made["permissions"] == {"comment": "2"}
    assert made["count"]["docs"] == "0" and "cover" not in made
    assert made["description"] == ""
    with_cover = as_user(owner, "album.create", title="C", cover_id=doc.id)["album"]
    assert with_cover["cover"]["doc_id"] == str(doc.id) and with_cover["count"]["docs"] == "1"
    edited = as_user(owner, "album.edit", album_id=made["album_id"], description="D")["album"]
    assert edited["title"] == "Trip" and edited["description"] == "D"
    assert edited["visibility"] == {"ispublic": "1", "isfamily": "0", "isfriends": "0",
                                    "share": "4"}


def test_write_errors(as_user, owner, member, make_doc, album):
    row, docs = album
    foreign = make_doc(member)
    assert as_user(owner, "album.create")["api"]["code"] == "2"
    assert as_user(owner, "album.create", title="x", perm_comment=6)["api"]["code"] == "2"
    assert as_user(owner, "album.create", title="x", cover_id=foreign.id)["api"]["code"] == "2"
    assert as_user(owner, "album.edit", album_id=999)["api"]["code"] == "1"
    assert as_user(owner, "album.edit", album_id=row.id, cover_id=foreign.id)["api"]["code"] == "2"
    assert as_user(owner, "album.setPerms", album_id=row.id)["api"]["code"] == "2"
    assert as_user(owner, "album.setPerms", album_id=row.id, perm_comment=9)["api"]["code"] == "2"
    assert as_user(owner, "album.setPerms", album_id=999, perm_comment=1)["api"]["code"] == "1"
    assert as_user(owner, "album.orderList", album_ids="1,x")["api"]["code"] == "2"
    assert as_user(owner, "album.docs.add", album_id=row.id, doc_id="a")["api"]["code"] == "2"
    assert as_user(owner, "album.docs.setList", album_id=row.id, doc_ids=docs[0].id,
                   cover_id=docs[1].id)["api"]["code"] == "2"
    assert as_user(owner, "album.delete", album_id="x")["api"]["code"] == "1"
    assert as_user(owner, "album.edit", album_id=row.id, level="read")["api"]["code"] == "110"
    assert as_user(owner, "album.delete", album_id=row.id, level="write")["api"]["code"] == "110"


def test_only_the_owner_changes_an_album(as_user, owner, member, album):
    row, docs = album
    mine = as_user(member, "album.create", title="Mine")["album"]["album_id"]
    for method, params in (("album.edit", {"title": "x"}), ("album.delete", {}),
                           ("album.setPerms", {"perm_comment": 1}),
                           ("album.docs.add", {"doc_id": docs[0].id}),
                           ("album.docs.remove", {"doc_id": docs[0].id}),
                           ("album.docs.setList", {"doc_ids": docs[0].id,
                                                   "cover_id": docs[0].id}),
                           ("album.getVisitors", {})):
        assert as_user(member, method, album_id=row.id, **params)["api"]["code"] == "1", method
    assert as_user(member, "album.orderList", album_ids=f"{mine},{row.id}")["api"]["code"] == "1"
    assert Album.get_by_id(row.id).title == "Summer" and len(entries(row.id)) == 3


def test_docs_add_only_own_docs_and_flags_each(as_user, owner, member, make_doc):
    a, b, foreign = make_doc(owner), make_doc(owner), make_doc(member)
    album_id = as_user(owner, "album.create", title="A")["album"]["album_id"]
    got = as_user(owner, "album.docs.add", album_id=album_id,
                  doc_id=f"{a.id},{foreign.id},{a.id}")["album"]
    assert got["total"] == "1" and got["added"] == "1" and got["skipped"] == "1"
    assert got["doc"] == [{"doc_id": str(a.id), "added": "1", "error": "0"},
                          {"doc_id": str(foreign.id), "added": "0", "error": "1"}]
    again = as_user(owner, "album.docs.add", album_id=album_id, doc_id=f"{a.id},{b.id}")["album"]
    assert again["doc"][0] == {"doc_id": str(a.id), "added": "0", "error": "0"}
    assert entries(int(album_id)) == [a.id, b.id]
    assert Album.get_by_id(album_id).cover_id == a.id  # the first doc became the cover


def test_remove_and_set_list_keep_order_and_cover(as_user, owner, make_doc, album):
    row, docs = album
    gone = as_user(owner, "album.docs.remove", album_id=row.id, doc_id=f"{docs[0].id},999")
    assert gone["album"]["removed"] == "1" and gone["album"]["skipped"] == "1"
    assert gone["album"]["doc"][1] == {"doc_id": "999", "removed": "0"}
    assert Album.get_by_id(row.id).cover_id == docs[1].id  # the cover left: next first doc
    assert Doc.get_or_none(Doc.id == docs[0].id) is not None  # the doc itself stays
    new = make_doc(owner)
    got = as_user(owner, "album.docs.setList", album_id=row.id,
                  doc_ids=f"{new.id},{docs[2].id}", cover_id=new.id)["album"]
    assert (got["total"], got["added"], got["cover_id"]) == ("2", "1", str(new.id))
    assert entries(row.id) == [new.id, docs[2].id]
    assert Album.get_by_id(row.id).cover_id == new.id


def test_what_live_clients_read(as_user, call, owner, member, make_doc, album):
    """PyIpernity's live tests read cover.doc_id (edit, get) and album.getList's owner;
    python-ipernity-api reads album.docs.setList's rows under ``docs``."""
    row, docs = album
    edited = as_user(owner, "album.edit", album_id=row.id, cover_id=docs[1].id)["album"]
    assert edited["cover"]["doc_id"] == edited["cover"]["cover_id"] == str(docs[1].id)
    got = as_user(member, "album.get", album_id=row.id, level="read")["album"]
    assert got["cover"]["doc_id"] == str(docs[1].id)
    owner_card = {"user_id": str(owner.id), "username": "owner", "realname": "Key Owner"}
    as_user(owner, "album.create", title="Second")
    for caller in (owner, member):
        listed = as_user(caller, "album.getList", user_id=owner.id, level="read")["albums"]
        assert [a["owner"] for a in listed["album"]] == [owner_card, owner_card]
    foreign = make_doc(member)
    rows = as_user(owner, "album.docs.setList", album_id=row.id,
                   doc_ids=f"{docs[2].id},{foreign.id}", cover_id=docs[2].id)["album"]
    assert rows["docs"] == rows["doc"] == [
        {"doc_id": str(docs[2].id), "added": "0", "error": "0"},
        {"doc_id": str(foreign.id), "added": "0", "error": "1"}]


def test_doc_albums_add(as_user, owner, member, make_doc):
    doc = make_doc(owner)
    first = as_user(owner, "album.create", title="1")["album"]["album_id"]
    second = as_user(owner, "album.create", title="2")["album"]["album_id"]
    theirs = as_user(member, "album.create", title="3")["album"]["album_id"]
    got = as_user(owner, "doc.albums.add", doc_id=doc.id,
                  album_id=f"{first},{second},{theirs}")["doc"]
    assert (got["total"], got["added"], got["skipped"]) == ("2", "2", "1")
    assert got["album"][2] == {"album_id": theirs, "added": "0", "error": "1"}
    assert as_user(member, "doc.albums.add", doc_id=doc.id, album_id=theirs)["api"]["code"] == "1"
    assert as_user(owner, "doc.albums.add", doc_id=doc.id)["api"]["code"] == "2"


def test_order_list(as_user, owner):
    ids = [as_user(owner, "album.create", title=t)["album"]["album_id"] for t in "abc"]
    listed = as_user(owner, "album.getList")["albums"]["album"]
    assert [a["album_id"] for a in listed] == ids[::-1]  # newest first until ordered
    as_user(owner, "album.orderList", album_ids=f"{ids[1]},{ids[0]}")
    listed = as_user(owner, "album.getList")["albums"]["album"]
    assert [a["album_id"] for a in listed] == [ids[1], ids[0], ids[2]]


def test_order_list_takes_at_most_10000_ids(as_user, owner):
    """It had no cap: a list was read whole, each id looked up in it (quadratic)."""
    album_id = as_user(owner, "album.create", title="a")["album"]["album_id"]
    unknown = ",".join(str(n) for n in range(int(album_id) + 1, int(album_id) + 10_001))
    assert as_user(owner, "album.orderList", album_ids=unknown)["api"]["code"] == "1"
    assert as_user(owner, "album.orderList",
                   album_ids=f"{unknown},{album_id}")["api"]["code"] == "2"  # 10,001 ids
    many_times = ",".join([album_id] * 10_001)  # items are counted, not different ids
    assert as_user(owner, "album.orderList", album_ids=many_times)["api"]["code"] == "2"
    assert as_user(owner, "album.orderList", album_ids=many_times[len(album_id) + 1:]) == {
        "api": {"status": "ok"}}


def test_delete_keeps_docs(as_user, owner, album):
    row, docs = album
    as_user(owner, "album.delete", album_id=row.id)
    assert Album.get_or_none(Album.id == row.id) is None
    assert Doc.select().where(Doc.id.in_([d.id for d in docs])).count() == 3


def test_get_counts_visits_of_others_only(call, as_user, owner, member, album, clock):
    row, _docs = album
    as_user(owner, "album.get", album_id=row.id, level="read")
    call("album.get", album_id=row.id)  # anonymous
    assert Album.get_by_id(row.id).visits == 0
    as_user(member, "album.get", album_id=row.id, level="read")
    as_user(member, "album.docs.getList", album_id=row.id, level="read")  # the same visit
    clock.advance(1800)
    you = as_user(member, "album.get", album_id=row.id, level="read")["album"]["you"]
    assert you["visits"] == "2" and you["last_visit_at"] == "1800001800"
    visits = as_user(owner, "album.getVisitors", album_id=row.id)["visits"]
    assert visits["visit"][0]["username"] == "member" and visits["visit"][0]["visits"] == "2"
    assert Album.get_by_id(row.id).visits == 2


def test_get_visitors_paging(call, token_for, as_user, owner, album, clock):
    from keys import store

    row, _docs = album
    for n in range(12):
        visitor = store.add_user(f"v{n}", "password-123")
        clock.advance(1)
        call("album.get", token=token_for(visitor, doc="read"), album_id=row.id)
    page = as_user(owner, "album.getVisitors", album_id=row.id, page=2)["visits"]
    assert {k: page[k] for k in ("total", "page", "pages", "per_page", "count")} == {
        "total": "12", "page": "2", "pages": "2", "per_page": "10", "count": "2"}
    assert page["visit"][-1]["username"] == "v0"  # latest first
    assert as_user(owner, "album.getVisitors", album_id=row.id, per_page=101)["visits"][
        "per_page"] == "100"  # lowered to the maximum
    assert as_user(owner, "album.getVisitors", album_id=row.id, per_page="ten")["api"][
        "code"] == "143"


# --- visibility --------------------------------------------------------------------------------

def test_private_album_is_invisible_to_strangers(call, as_user, owner, member, stranger, relate,
                                                 album):
    row, docs = album
    Album.update(is_public=False, is_family=True).where(Album.id == row.id).execute()
    relate(owner, member, family=True)
    for user in (None, stranger):
        ask = (lambda m, **p: call(m, **p)) if user is None else (
            lambda m, u=user, **p: as_user(u, m, level="read", **p))
        assert ask("album.get", album_id=row.id)["api"]["code"] == "1"
        assert ask("album.docs.getList", album_id=row.id)["api"]["code"] == "1"
        assert ask("album.docs.getContext", album_id=row.id, doc_id=docs[0].id)["api"][
            "code"] == "1"
        assert ask("album.getList", user_id=owner.id)["albums"]["total"] == "0"
        assert ask("doc.getContainers", doc_id=docs[0].id)["albums"]["total"] == "0"
    assert as_user(member, "album.get", album_id=row.id, level="read")["album"]["title"]
    assert as_user(member, "album.getList", user_id="owner", level="read")["albums"][
        "total"] == "1"


def test_private_docs_are_left_out_of_a_public_album(call, as_user, owner, album):
    row, docs = album
    Doc.update(is_public=False).where(Doc.id == docs[0].id).execute()  # docs[0] is the cover
    listed = call("album.docs.getList", album_id=row.id)["album"]
    assert [d["doc_id"] for d in listed["docs"]["doc"]] == [str(docs[1].id), str(docs[2].id)]
    assert "cover" not in listed  # a private cover is not shown to others
    got = call("album.get", album_id=row.id)["album"]
    assert got["count"]["docs"] == "2" and "cover" not in got
    assert call("album.docs.getContext", album_id=row.id, doc_id=docs[0].id)["api"]["code"] == "2"
    assert call("doc.getContainers", doc_id=docs[0].id)["api"]["code"] == "1"
    mine = as_user(owner, "album.docs.getList", album_id=row.id, level="read")["album"]
    assert mine["docs"]["total"] == "3" and mine["cover"]["doc_id"] == str(docs[0].id)


# --- lists, paging and query counts ------------------------------------------------------------

def test_get_list_paging_and_errors(call, as_user, owner):
    for n in range(5):
        as_user(owner, "album.create", title=f"A{n}")
    page = call("album.getList", user_id=owner.id, per_page=2, page=3)["albums"]
    assert {k: page[k] for k in ("total", "page", "pages", "per_page", "count", "thumbsize")} == {
        "total": "5", "page": "3", "pages": "3", "per_page": "2", "count": "1",
        "thumbsize": "75x"}
    assert page["can"] == {"create": "0"}
    assert call("album.getList", user_id=owner.id)["albums"]["per_page"] == "100"
    assert call("album.getList", user_id=owner.id, per_page=101)["albums"]["per_page"] == "100"
    assert call("album.getList", user_id=owner.id, per_page=0)["api"]["code"] == "143"
    assert call("album.getList")["api"]["code"] == "1"
    assert call("album.getList", user_id="nobody")["api"]["code"] == "1"
    assert call("album.getList", user_id=owner.id, empty=0)["albums"]["total"] == "0"


def test_docs_get_list_paging_extras_and_filters(call, owner, make_doc, as_user):
    docs = [make_doc(owner, media="video" if n % 5 == 0 else "photo") for n in range(25)]
    album_id = as_user(owner, "album.create", title="Big")["album"]["album_id"]
    as_user(owner, "album.docs.add", album_id=album_id, doc_id=",".join(str(d.id) for d in docs))
    page = call("album.docs.getList", album_id=album_id, per_page=10, page=3,
                extra="link,dates", thumbsize="240")["album"]
    attrs = {k: page["docs"][k] for k in ("total", "page", "pages", "per_page", "count")}
    assert attrs == {"total": "25", "page": "3", "pages": "3", "per_page": "10", "count": "5"}
    first = page["docs"]["doc"][0]
    assert first["doc_id"] == str(docs[20].id) and first["thumb"]["label"] == "240"
    assert first["link"].endswith(f"/doc/{owner.id}/{docs[20].id}/in/album/{album_id}")
    assert "dates" in first and page["cover"]["url"].endswith(".240.jpg")
    assert call("album.docs.getList", album_id=album_id, media="video")["album"]["docs"][
        "total"] == "5"
    assert call("album.docs.getList", album_id=album_id, per_page=101)["album"]["docs"][
        "per_page"] == "100"
    assert call("album.docs.getList", album_id=album_id, page=0)["api"]["code"] == "143"
    assert call("album.docs.getList", album_id=album_id, media="x")["api"]["code"] == "2"
    assert call("album.docs.getList", album_id=999)["api"]["code"] == "1"
    assert call("album.docs.getList")["api"]["code"] == "1"


def test_get_context(call, owner, make_doc, as_user):
    docs = [make_doc(owner) for _ in range(6)]
    album_id = as_user(owner, "album.create", title="C")["album"]["album_id"]
    as_user(owner, "album.docs.add", album_id=album_id, doc_id=",".join(str(d.id) for d in docs))
    got = call("album.docs.getContext", album_id=album_id, doc_id=docs[2].id, prev=5, next=2)
    assert got["album"] == {"album_id": album_id, "total": "6", "thumbsize": "75x"}
    assert [(d["index"], d["doc_id"]) for d in got["prev"]["doc"]] == [
        ("-1", str(docs[1].id)), ("-2", str(docs[0].id))]
    assert got["prev"]["count"] == "2" and got["next"]["count"] == "2"
    assert got["doc"]["index"] == "0" and got["doc"]["user_id"] == str(owner.id)
    assert [d["index"] for d in got["next"]["doc"]] == ["1", "2"]
    assert call("album.docs.getContext", album_id=album_id, doc_id=docs[2].id,
                prev=51)["api"]["code"] == "2"
    assert call("album.docs.getContext", album_id=album_id, doc_id=999)["api"]["code"] == "2"


def test_list_methods_do_not_query_per_row(call, as_user, token_for, owner, member, make_doc,
                                           count_queries, clock):
    from keys import store

    docs = [make_doc(owner) for _ in range(4)]
    owner_token = token_for(owner, doc="read")
    lists = (("album.getList", {"user_id": owner.id}),
             ("doc.getContainers", {"doc_id": docs[0].id}),
             ("album.docs.getList", {"album_id": 1}),
             ("album.getVisitors", {"album_id": 1, "token": owner_token}))

    def fill(n: int) -> None:
        for _ in range(n):
            album_id = as_user(owner, "album.create", title="x", cover_id=docs[0].id)[
                "album"]["album_id"]
            as_user(owner, "album.docs.add", album_id=album_id,
                    doc_id=",".join(str(d.id) for d in docs))
            visitor = store.add_user(f"v{album_id}", "password-123")
            call("album.get", token=token_for(visitor, doc="read"), album_id=1)

    def counted(method: str, **params) -> int:
        with count_queries() as log:
            assert call(method, **params)["api"]["status"] == "ok"
        return len(log)

    fill(2)
    small = {method: counted(method, **params) for method, params in lists}
    fill(8)
    for method, params in lists:
        assert counted(method, **params) == small[method], method


def test_safesurf_hides_covers_and_docs(call, as_user, owner, album):
    row, docs = album
    Doc.update(safety=3).where(Doc.id == docs[0].id).execute()  # the cover: adults only
    listed = call("album.getList", user_id=owner.id)["albums"]["album"][0]
    assert "cover" not in listed
    assert call("album.docs.getList", album_id=row.id)["album"]["docs"]["total"] == "2"
    assert call("album.getList", user_id=owner.id, safesurf=4)["api"]["code"] == "2"
    mine = as_user(owner, "album.getList", level="read")["albums"]["album"][0]
    assert mine["cover"]["doc_id"] == str(docs[0].id)  # your own docs are never hidden


def test_edit_sent_empty_clears_absent_keeps(as_user, owner, album):
    row, _docs = album
    kept = as_user(owner, "album.edit", album_id=row.id, title="Winter")["album"]
    assert kept["description"] == "Sea"
    cleared = as_user(owner, "album.edit", album_id=row.id, description="")["album"]
    assert cleared["description"] == "" and cleared["title"] == "Winter"
    assert as_user(owner, "album.edit", album_id=row.id, title=" ")["api"]["code"] == "2"
    assert Album.get_by_id(row.id).title == "Winter"  # nothing half-written


# --- issue 7: own list without user_id, per_page lowered, flags as True/False ------------------

def test_get_list_without_user_id_and_lenient_values(call, as_user, owner, member, token_for):
    for n in range(3):
        as_user(owner, "album.create", title=f"A{n}")
    token = token_for(owner, doc="read")
    mine = call("album.getList", token=token)["albums"]
    assert mine["total"] == "3"
    assert call("album.getList", token=token_for(member, doc="read"))["albums"]["total"] == "0"
    assert call("album.getList", sign=True)["api"]["code"] == "1"  # no token, no user_id
    page = call("album.getList", token=token, per_page=500)["albums"]
    assert (page["per_page"], page["count"]) == ("100", "3")  # lowered, and said
    assert call("album.getList", token=token, per_page="many")["api"]["code"] == "143"
    assert call("album.getList", token=token, empty="False")["albums"]["total"] == "0"
    assert call("album.getList", token=token, empty="TRUE")["albums"]["total"] == "3"
    assert call("album.getList", token=token, empty="maybe")["api"]["code"] == "2"
    params = call("api.methods.get", method="album.getList")["method"]["parameters"]
    user_id = next(p for p in params if p["name"] == "user_id")
    assert user_id.get("required", "0") == "0" and "authenticated user" in user_id["value"]


@pytest.mark.parametrize("method, params, cap", [
    ("album.docs.add", {"doc_id": None}, 10_000),
    ("album.docs.remove", {"doc_id": None}, 10_000),
    ("album.docs.setList", {"doc_ids": None, "cover_id": 1}, 10_000),
    ("doc.albums.add", {"album_id": None}, 500),
])
def test_id_lists_are_capped_before_any_lock(as_user, owner, make_doc, method, params, cap):
    """A list over its cap is 2 at once (a repeat counts): it was read whole inside the write."""
    album_id = as_user(owner, "album.create", title="a")["album"]["album_id"]
    doc = make_doc(owner)
    target = {"doc_id": doc.id} if method == "doc.albums.add" else {"album_id": album_id}
    name = next(key for key, value in params.items() if value is None)
    over = {**params, **target, name: ",".join(["1"] * (cap + 1))}
    assert as_user(owner, method, **over)["api"]["code"] == "2"
    at_cap = {**params, **target, name: ",".join([str(doc.id)] * cap)}
    if method == "album.docs.setList":
        at_cap["cover_id"] = doc.id
    assert as_user(owner, method, **at_cap)["api"]["status"] == "ok"
