"""doc.getList and doc.search: shapes, paging, visibility, safesurf, criteria, query counts."""

from __future__ import annotations

import pytest

from api.models.docs import NO_DATE, Album, AlbumDoc, Tag
from keys import store
from tests.docs.shapes import compare


@pytest.fixture
def stranger(ctx):
    return store.add_user("stranger", "stranger-password")


def ids(answer: dict) -> list[int]:
    return [int(d["doc_id"]) for d in answer["docs"].get("doc", [])]


def test_get_list_shape_and_paging(call, owner, make_doc):
    docs = [make_doc(owner) for _ in range(25)]
    compare("doc.getList", call.raw("doc.getList", "xml", user_id=owner.id).content,
            added={"docs@count"})
    got = call("doc.getList", user_id=owner.id, per_page=10, page=3)["docs"]
    assert {k: got[k] for k in ("total", "page", "pages", "per_page", "count")} == {
        "total": "25", "page": "3", "pages": "3", "per_page": "10", "count": "5"}
    assert [int(d["doc_id"]) for d in got["doc"]] == [d.id for d in reversed(docs[:5])]
    assert call("doc.getList", user_id=owner.id)["docs"]["per_page"] == "20"
    assert call("doc.getList", user_id="owner")["docs"]["total"] == "25"  # web alias


def test_get_list_errors(call, owner):
    assert call("doc.getList", user_id=owner.id, per_page=101)["docs"]["per_page"] == "100"
    assert call("doc.getList", user_id=owner.id, page=0)["api"]["code"] == "143"
    assert call("doc.getList")["api"]["code"] == "1"
    assert call("doc.getList", user_id="nobody")["api"]["code"] == "1"
    assert call("doc.getList", user_id=owner.id, media="painting")["api"]["code"] == "2"
    assert call("doc.getList", user_id=owner.id, safesurf=4)["api"]["code"] == "2"
    assert call("doc.getList", user_id=owner.id, share="x")["api"]["code"] == "2"


def test_get_list_extras_and_thumbsize(call, owner, make_doc):
    doc = make_doc(owner, lat=1.5, lng=2.5, license=9)
    got = call("doc.getList", user_id=owner.id, thumbsize="240",
               extra="dates,count,geo,medias,original,md5")["docs"]["doc"][0]
    assert got["thumb"]["label"] == "240" and got["thumb"]["w"] == "240"
    assert got["dates"]["posted_at"] == str(doc.posted_at)
    assert got["count"] == {"visits": "0", "faves": "0", "comments": "0"}
    assert got["geo"] == {"lat": "1.5", "lng": "2.5"} and got["md5"] == doc.md5
    assert got["medias"] == {"media": []} and got["original"]["ext"] == "jpg"
    biggest = call("doc.getList", user_id=owner.id, thumbsize="1024")["docs"]["doc"][0]
    assert biggest["thumb"]["label"] == "500"  # "the max value they have" (§10.2)


def test_private_doc_invisible_to_a_stranger_in_lists(call, owner, stranger, make_doc,
                                                       token_for):
    public, private = make_doc(owner, title="red car"), make_doc(owner, is_public=False,
                                                                   title="red car")
    for token in (None, token_for(stranger, doc="read")):
        assert ids(call("doc.getList", token=token, user_id=owner.id)) == [public.id]
        assert ids(call("doc.search", token=token, text="car")) == [public.id]
    mine = token_for(owner, doc="read")
    assert ids(call("doc.getList", token=mine, user_id=owner.id)) == [private.id, public.id]
    assert ids(call("doc.getList", token=mine, user_id=owner.id, share=0)) == [private.id]
    assert ids(call("doc.search", token=mine, text="car")) == [private.id, public.id]


def test_safesurf_defaults(call, owner, stranger, make_doc, token_for):
    docs = {level: make_doc(owner, safety=level) for level in (1, 2, 3)}
    assert ids(call("doc.getList", user_id=owner.id)) == [docs[1].id]
    assert ids(call("doc.getList", user_id=owner.id, safesurf=3)) == [docs[2].id, docs[1].id]
    token = token_for(stranger, doc="read")
    assert len(ids(call("doc.getList", token=token, user_id=owner.id, safesurf=3))) == 3
    assert len(ids(call("doc.getList", token=token_for(owner, doc="read"),
                        user_id=owner.id))) == 3


def test_search_shape(call, owner, make_doc):
    make_doc(owner, title="a nice car", license=3)
    xml = call.raw("doc.search", "xml", text="car", extra="dates,original").content
    compare("doc.search", xml,
            added={"docs@count", "docs/doc@media", "docs/doc@safety", "docs/doc/owner@username",
                   "docs/doc/owner@realname", "docs/doc/dates@posted_at",
                   "docs/doc/dates@created", "docs/doc/dates@modified_at",
                   *(f"docs/doc/original@{a}" for a in ("ext", "w", "h", "length", "bytes",
                                                       "url"))})


def test_search_by_created_skips_documents_without_a_date(call, owner, make_doc):
    dated = make_doc(owner, created="2008-01-03 11:22:00")
    undated = make_doc(owner, created=NO_DATE)  # sorts before every date, matches neither bound
    assert ids(call("doc.search", created_max="2030-01-01")) == [dated.id]
    assert ids(call("doc.search", created_min="0000-00-00")) == [dated.id]
    assert undated.id in ids(call("doc.search"))


def test_search_text_tags_and_filters(call, owner, member, make_doc):
    sunset = make_doc(owner, title="Sunset", media="photo", license=1,
                      created="2008-01-03 11:22:00")
    sky = make_doc(member, title="x", description="blue SKY", media="video", license=3)
    both = make_doc(owner, title="y", license=1)
    for doc, words in ((sunset, ("beach", "blue sky")), (both, ("beach", "blue sky", "sea")),
                       (sky, ("sea",))):
        for word in words:
            Tag.create(doc=doc, tag=word, norm=word)
    # A keyword tag's words count one by one: "sky" is a word of the "blue sky" tag
    # (docs/protocol-choices.md, "Full-text search").
    assert ids(call("doc.search", text="sky")) == [both.id, sky.id, sunset.id]
    assert ids(call("doc.search", text="sky sea")) == [both.id, sky.id]
    assert ids(call("doc.search", text="sunset beach")) == [sunset.id]
    assert ids(call("doc.search", tags='"blue sky",BEACH')) == [both.id, sunset.id]
    assert ids(call("doc.search", tags="beach,sea")) == [both.id]
    assert ids(call("doc.search", user_id=member.id)) == [sky.id]
    assert ids(call("doc.search", media="video,audio")) == [sky.id]
    assert ids(call("doc.search", license="1", sort="posted-asc")) == [sunset.id, both.id]
    assert ids(call("doc.search", created_min="2008-01-03", created_max="2008-01-03")) == [
        sunset.id]
    assert ids(call("doc.search", posted_min=both.posted_at)) == [both.id]
    assert ids(call("doc.search", posted_max=sunset.posted_at)) == [sunset.id]
    assert ids(call("doc.search", group_id=5)) == []


def test_search_album(call, owner, make_doc):
    inside, _ = make_doc(owner), make_doc(owner)
    album = Album.create(owner=owner, title="A")
    AlbumDoc.create(album=album, doc=inside)
    assert ids(call("doc.search", album_id=album.id)) == [inside.id]
    private = Album.create(owner=owner, title="B", is_public=False)
    assert call("doc.search", album_id=private.id)["api"]["code"] == "2"


def test_search_radius_and_sorts(call, owner, make_doc):
    paris = make_doc(owner, lat=48.8566, lng=2.3522, faves=1)
    near = make_doc(owner, lat=48.8666, lng=2.3522, faves=5)  # ~1.1 km north
    make_doc(owner, lat=48.8566, lng=2.9, faves=9)  # ~40 km east
    make_doc(owner)
    assert ids(call("doc.search", lat=48.8566, lng=2.3522)) == [paris.id, near.id]
    assert ids(call("doc.search", lat=48.8566, lng=2.3522, dist=1000)) == [paris.id]
    assert ids(call("doc.search", lat=48.8566, lng=2.3522, sort="popular")) == [near.id, paris.id]
    assert ids(call("doc.search", lat=48.87, lng=2.3522, dist=30000))[0] == near.id


@pytest.mark.parametrize("params", [
    {"dist": 30001, "lat": 1, "lng": 1}, {"lat": 1}, {"dist": 100}, {"lat": 91, "lng": 0},
    {"sort": "random"}, {"media": "painting"}, {"license": "2"}, {"created_min": "2008"},
    {"posted_min": "yesterday"}, {"tags": ",".join(f"t{i}" for i in range(21))},
    {"safesurf": 0}, {"share": 5}])
def test_search_invalid_arguments(call, params):
    assert call("doc.search", **params)["api"]["code"] == "3"


def test_search_errors(call):
    assert call("doc.search", user_id="nobody")["api"]["code"] == "1"
    assert call("doc.search", album_id=99)["api"]["code"] == "2"
    assert call("doc.search", per_page=101)["docs"]["per_page"] == "100"
    assert call("doc.search", per_page=0)["api"]["code"] == "143"


@pytest.mark.parametrize("method", ["doc.getList", "doc.search"])
def test_lists_do_not_query_per_row(method, call, owner, make_doc, count_queries, token_for):
    for _ in range(30):
        make_doc(owner)
    token = token_for(owner, doc="read")
    params = {"user_id": owner.id, "extra": "owner,dates,count,geo,medias,original,md5"}
    call(method, token=token, **params)  # warm-up: first use of a token may write (last used)
    counts = []
    for per_page in (2, 30):
        with count_queries() as log:
            got = call(method, token=token, per_page=per_page, **params)
        assert len(got["docs"]["doc"]) == per_page
        counts.append(len(log))
    assert counts[0] == counts[1]
    assert counts[1] <= 5  # token, user, count, page, thumbs: the same at any page size


# --- issue 7: a member's own list without user_id; per_page over the maximum ---------------------

def test_get_list_without_user_id_is_the_callers_own(call, owner, member, make_doc, token_for):
    mine = [make_doc(owner, is_public=False) for _ in range(3)]
    make_doc(member)
    got = call("doc.getList", token=token_for(owner, doc="read"))["docs"]
    assert sorted(ids({"docs": got})) == sorted(d.id for d in mine)  # private ones too: the owner
    assert call("doc.getList", token=token_for(member, doc="read"))["docs"]["total"] == "1"
    assert call("doc.getList", token=token_for(owner, doc="read"), user_id="")["docs"][
        "total"] == "3"  # sent empty: the default too
    assert call("doc.getList", sign=True)["api"]["code"] == "1"  # no token, no user_id: missing


def test_get_list_user_id_is_optional_in_reflection(call):
    params = call("api.methods.get", method="doc.getList")["method"]["parameters"]
    user_id = next(p for p in params if p["name"] == "user_id")
    assert user_id.get("required", "0") == "0" and "authenticated user" in user_id["value"]


def test_per_page_over_the_maximum_is_lowered(call, owner, make_doc):
    for _ in range(3):
        make_doc(owner)
    got = call("doc.getList", user_id=owner.id, per_page=500)["docs"]
    assert (got["per_page"], got["pages"], got["count"]) == ("100", "1", "3")
    assert call("doc.search", user_id=owner.id, per_page=500)["docs"]["per_page"] == "100"
    for bad in ("abc", "1.5", "-2", "0"):
        assert call("doc.getList", user_id=owner.id, per_page=bad)["api"]["code"] == "143"
        assert call("doc.search", page=bad)["api"]["code"] == "143"


def test_lists_find_open_members_only_and_user_get_finds_any(call, owner):
    """find_open_member (doc.getList, album.getList …) and find_member (user.get), by id or
    username: a closed account is 1 for the lists, and still shown (is_closed) by user.get."""
    store.set_user_open("owner", False)
    for ref in (owner.id, "owner"):
        assert call("doc.getList", user_id=ref)["api"]["code"] == "1"
        assert call("album.getList", user_id=ref)["api"]["code"] == "1"
        assert call("user.get", user_id=ref)["user"]["is_closed"] == "1"
    assert call("user.get", user_id="nobody")["api"]["code"] == "1"
