"""tags.docs.getList, tags.user.getList/getPopular, explore.docs.getPopular/homepage,
explore.groups.getRandom (issue 13): shapes, visibility, ranking, paging, errors, query counts,
flags as in PyIpernity's methods.json, and each called through PyIpernity."""

from __future__ import annotations

import importlib.resources
import json

import pytest
from ipernity import IpernityAPI

from api.content.tags import add_tags
from api.models.docs import Doc, DocFave, DocVisit, Relation, Tag
from keys import store
from keys.db import db
from keys.models import User
from tests.docs.shapes import _examples, compare, our_names, spec_names

NEW_METHODS = ("tags.docs.getList", "tags.user.getList", "tags.user.getPopular",
               "explore.docs.getPopular", "explore.docs.homepage", "explore.groups.getRandom")
PAGED = {"docs@total", "docs@page", "docs@pages", "docs@per_page", "docs@count"}
OWNER_CARD = {"docs/doc/owner@username", "docs/doc/owner@realname"}


@pytest.fixture
def stranger(ctx):
    return store.add_user("stranger", "stranger-password")


@pytest.fixture
def tag(clock):
    """``tag(doc, "car", "blue sky", members=[user])``: keyword and member tags on a doc."""

    def put(doc: Doc, *keywords: str, members=()) -> Doc:
        add_tags(doc, keywords=keywords, members=members, added_by=None, now=int(clock()))
        return doc

    return put


def ids(answer: dict) -> list[int]:
    return [int(d["doc_id"]) for d in answer["docs"]["doc"]]


def keyword_id(call, doc: Doc, keyword: str) -> str:
    tags = call("doc.tags.getList", doc_id=doc.id)["tags"]["tag"]
    return next(t["id"] for t in tags if t["tag"] == keyword)


def tags_spec_names(method: str) -> set[str]:
    """The example's names; its ``count=22"`` lacks an opening quote, which hides the whole
    example from an XML parser, so it is repaired first."""
    body = _examples()[method].replace('count=22"', 'count="22"').replace("(...)", "")
    return our_names(f"<api>{body}</api>".encode())


def visit(doc: Doc, visitor, at: int) -> None:
    DocVisit.create(doc=doc, visitor=visitor, visited_at=at, first_visit_at=at)


# --- shapes (method-shapes.md) and the registry --------------------------------------------------

def test_shapes(call, owner, member, make_doc, tag, clock):
    doc = tag(make_doc(owner, license=3), "car", members=[member])
    visit(doc, member, int(clock()))
    compare("tags.docs.getList", call.raw("tags.docs.getList", "xml", type="keyword",
                                          id=keyword_id(call, doc, "car"),
                                          extra="dates,original").content,
            added={"docs@count", "docs/doc@media", "docs/doc@safety", *OWNER_CARD,
                   "docs/doc/dates@posted_at", "docs/doc/dates@created",
                   "docs/doc/dates@modified_at",
                   *(f"docs/doc/original@{a}" for a in ("ext", "w", "h", "length", "bytes",
                                                       "url"))})
    for method in ("tags.user.getList", "tags.user.getPopular"):
        xml = call.raw(method, "xml", user_id=owner.id, type="keyword").content
        assert our_names(xml) == tags_spec_names(method)
    compare("explore.docs.getPopular", call.raw("explore.docs.getPopular", "xml").content,
            added={"docs@count", "docs/doc@safety"} | OWNER_CARD)
    compare("explore.docs.homepage", call.raw("explore.docs.homepage", "xml").content,
            added=PAGED - {"docs@count"} | {"docs/doc@safety"} | OWNER_CARD)
    groups = call.raw("explore.groups.getRandom", "xml").content
    compare("explore.groups.getRandom", groups,
            absent=spec_names("explore.groups.getRandom") - {"groups", "groups@count"})


def test_empty_lists_keep_their_item_key(call, owner):
    assert call("explore.groups.getRandom") == {"groups": {"count": "0", "group": []},
                                                "api": {"status": "ok"}}
    assert call("explore.docs.getPopular")["docs"]["doc"] == []
    assert call("explore.docs.homepage")["docs"] == {"total": "0", "page": "1", "pages": "0",
                                                     "per_page": "5", "count": "0", "doc": []}
    assert call("tags.docs.getList", type="keyword", id="nothing")["docs"]["doc"] == []
    got = call("tags.user.getList", user_id=owner.id, type="member")["tags"]
    assert got == {"count": "0", "type": "member", "user_id": str(owner.id), "tag": []}
    assert call("tags.user.getPopular", user_id=owner.id)["tags"]["tag"] == []


def test_flags_and_permissions_equal_pyipernity(call):
    original = json.loads(importlib.resources.files("ipernity").joinpath("methods.json")
                          .read_text())
    listed = {m["name"]: m for m in call("api.methods.getList")["methods"]["method"]}
    for name in (*NEW_METHODS, "explore.docs.getRecent"):
        ours, theirs = listed[name], original[name]
        for field in ("authentication", "permissions", "service", "title", "modified_at"):
            assert ours[field] == theirs[field], (name, field)


# --- tags.docs.getList ------------------------------------------------------------------------

def test_docs_of_a_keyword_by_id_or_text(call, owner, member, make_doc, tag):
    first = tag(make_doc(owner), "Car")
    second = tag(make_doc(member), "car", "sky")
    tag(make_doc(owner), "sky")
    by_id = call("tags.docs.getList", type="keyword", id=keyword_id(call, second, "car"))
    assert sorted(ids(by_id)) == sorted([first.id, second.id])  # any case, any owner
    assert sorted(ids(call("tags.docs.getList", type="keyword", id="CAR"))) == sorted(
        [first.id, second.id])
    only = call("tags.docs.getList", type="keyword", id="car", user_id="member")
    assert ids(only) == [second.id]
    item = only["docs"]["doc"][0]
    assert item["owner"] == {"user_id": str(member.id), "username": "member",
                             "realname": member.realname}


def test_docs_of_a_member_tag_and_of_a_machine_tag(call, owner, member, make_doc, tag):
    tagged = tag(make_doc(owner), "geo:lat=1", members=[member])
    tag(make_doc(owner), "plain")
    assert ids(call("tags.docs.getList", type="member", id=member.id)) == [tagged.id]
    assert ids(call("tags.docs.getList", type="member", id="member")) == [tagged.id]
    assert ids(call("tags.docs.getList", type="machine", id="geo:lat=1")) == [tagged.id]
    assert call("tags.docs.getList", type="machine", id="plain")["api"]["code"] == "1"


def test_tag_docs_respect_visibility_and_safesurf(call, owner, member, stranger, make_doc, tag,
                                                  token_for):
    public = tag(make_doc(owner), "car")
    private = tag(make_doc(owner, is_public=False), "car")
    friends = tag(make_doc(owner, is_public=False, is_friend=True), "car")
    adult = tag(make_doc(owner, safety=3), "car")
    Relation.create(user=owner, contact=member, is_friend=True)  # member is owner's friend
    query = {"type": "keyword", "id": "car", "sort": "posted-asc"}
    assert ids(call("tags.docs.getList", **query)) == [public.id]
    stranger_token = token_for(stranger, doc="read")
    assert ids(call("tags.docs.getList", token=stranger_token, **query)) == [public.id]
    friend_token = token_for(member, doc="read")
    assert ids(call("tags.docs.getList", token=friend_token, **query)) == [public.id, friends.id]
    assert ids(call("tags.docs.getList", token=friend_token, safesurf=3, **query)) == [
        public.id, friends.id, adult.id]
    mine = ids(call("tags.docs.getList", token=token_for(owner, doc="read"), **query))
    assert mine == [public.id, private.id, friends.id, adult.id]  # own docs never hidden


def test_tag_docs_sort_paging_and_extras(call, owner, make_doc, tag):
    docs = [tag(make_doc(owner), "car") for _ in range(7)]
    Doc.update(faves=5).where(Doc.id == docs[2].id).execute()
    Doc.update(visits=9).where(Doc.id == docs[4].id).execute()
    popular = ids(call("tags.docs.getList", type="keyword", id="car"))
    assert popular[:2] == [docs[2].id, docs[4].id]  # faves, then visits, then newest
    assert popular[2:] == [d.id for d in reversed(docs) if d not in (docs[2], docs[4])]
    got = call("tags.docs.getList", type="keyword", id="car", sort="posted-desc", per_page=3,
               page=3)["docs"]
    assert {k: got[k] for k in ("total", "page", "pages", "per_page", "count")} == {
        "total": "7", "page": "3", "pages": "3", "per_page": "3", "count": "1"}
    assert ids({"docs": got}) == [docs[0].id]
    assert call("tags.docs.getList", type="keyword", id="car")["docs"]["per_page"] == "100"
    assert call("tags.docs.getList", type="keyword", id="car",
                per_page=900)["docs"]["per_page"] == "500"
    item = call("tags.docs.getList", type="keyword", id="car", extra="dates,original,geo",
                thumbsize="240")["docs"]["doc"][0]
    assert "dates" in item and "geo" not in item  # not one of this method's extras
    assert item["thumb"]["label"] == "240"


@pytest.mark.parametrize(("params", "code"), [
    ({"type": "colour", "id": "1"}, "1"), ({"type": "keyword", "id": "99999"}, "1"),
    ({"type": "member", "id": "nobody"}, "1"), ({"type": "keyword"}, "1"), ({"id": "car"}, "1"),
    ({"type": "keyword", "id": "car", "sort": "best"}, "2"),
    ({"type": "keyword", "id": "car", "safesurf": 4}, "2"),
    ({"type": "keyword", "id": "car", "media": "painting"}, "2"),
    ({"type": "keyword", "id": "car", "user_id": "nobody"}, "3"),
    ({"type": "keyword", "id": "car", "page": 0}, "143")])
def test_tag_docs_errors(call, params, code):
    assert call("tags.docs.getList", **params)["api"]["code"] == code


# --- tags.user.getList / getPopular ------------------------------------------------------------

def test_user_tags_list_and_popular(call, owner, member, make_doc, tag):
    tag(make_doc(owner), "sky", "Car", members=[member])
    tag(make_doc(owner), "car", "sea")
    tag(make_doc(owner), "car", "ns:key=value")
    tag(make_doc(member), "moon")  # someone else's
    listed = call("tags.user.getList", user_id="owner", type="keyword")["tags"]
    assert [t["tag"].lower() for t in listed["tag"]] == ["car", "ns:key=value", "sea", "sky"]
    assert {t["type"] for t in listed["tag"]} == {"keyword"} and listed["count"] == "4"
    car = next(t for t in listed["tag"] if t["tag"].lower() == "car")
    assert len(ids(call("tags.docs.getList", type="keyword", id=car["id"]))) == 3
    members = call("tags.user.getList", user_id=owner.id, type="member")["tags"]["tag"]
    assert members == [{"type": "member", "id": str(member.id), "tag": "member"}]
    machine = call("tags.user.getList", user_id=owner.id, type="machine")["tags"]["tag"]
    assert [t["tag"] for t in machine] == ["ns:key=value"]
    popular = call("tags.user.getPopular", user_id=owner.id, type="keyword")["tags"]
    assert [(t["tag"].lower(), t["docs"]) for t in popular["tag"]][:2] == [("car", "3"),
                                                                           ("ns:key=value", "1")]
    assert popular["tag"][0]["posts"] == "0" and popular["type"] == "keyword"
    assert len(call("tags.user.getPopular", user_id=owner.id, count=2)["tags"]["tag"]) == 2
    assert len(call("tags.user.getList", user_id=owner.id, count=5000)["tags"]["tag"]) == 4


def test_user_tags_count_only_docs_the_caller_may_see(call, owner, member, stranger, make_doc,
                                                      tag, token_for):
    tag(make_doc(owner), "open")
    tag(make_doc(owner, is_public=False), "secret", "open")
    tag(make_doc(owner, is_public=False, is_family=True), "family")
    Relation.create(user=owner, contact=member, is_family=True)

    def listed(token=None) -> list[str]:
        return [t["tag"] for t in call("tags.user.getList", user_id=owner.id,
                                       token=token)["tags"]["tag"]]

    def popular(token=None) -> dict[str, str]:
        return {t["tag"]: t["docs"] for t in call("tags.user.getPopular", user_id=owner.id,
                                                  token=token)["tags"]["tag"]}

    assert listed() == ["open"] and popular() == {"open": "1"}
    assert listed(token_for(stranger, doc="read")) == ["open"]
    assert listed(token_for(member, doc="read")) == ["family", "open"]
    assert popular(token_for(owner, doc="read")) == {"open": "2", "family": "1", "secret": "1"}
    assert listed(token_for(owner, doc="write")) == ["family", "open", "secret"]


def test_user_id_defaults_to_the_caller(call, owner, make_doc, tag, token_for):
    tag(make_doc(owner, is_public=False), "mine")
    token = token_for(owner, doc="read")
    assert call("tags.user.getList", token=token)["tags"]["user_id"] == str(owner.id)
    assert [t["tag"] for t in call("tags.user.getPopular", token=token)["tags"]["tag"]] == [
        "mine"]
    assert call("tags.user.getList")["api"]["code"] == "1"  # neither token nor user_id


@pytest.mark.parametrize("method", ["tags.user.getList", "tags.user.getPopular"])
@pytest.mark.parametrize(("params", "code"), [
    ({"user_id": "nobody"}, "1"), ({"type": "colour"}, "2"), ({"count": 0}, "2"),
    ({"count": "x"}, "2")])
def test_user_tags_errors(call, owner, method, params, code):
    assert call(method, **({"user_id": owner.id} | params))["api"]["code"] == code


# --- explore.docs.getPopular ---------------------------------------------------------------------

def test_popular_ranks_the_weeks_visits_and_faves(call, owner, member, stranger, make_doc,
                                                  clock, token_for):
    now = int(clock())
    old = make_doc(owner, posted_at=now - 30 * 86400)
    visited = make_doc(owner, posted_at=now - 20 * 86400)
    faved = make_doc(owner, posted_at=now - 20 * 86400)
    only_faved = make_doc(owner, posted_at=now - 20 * 86400)
    faved_long_ago = make_doc(owner, posted_at=now - 20 * 86400, faves=5)
    stale = make_doc(owner, posted_at=now - 20 * 86400)
    fresh = make_doc(member, posted_at=now - 3600)
    hidden = make_doc(owner, is_public=False, posted_at=now - 60)
    for doc, who in ((visited, member), (visited, stranger), (faved, member), (hidden, member)):
        visit(doc, who, now - 86400)
    for doc, who, when in ((faved, stranger, now - 86400), (only_faved, member, now - 7200),
                           (faved_long_ago, member, now - 8 * 86400)):
        DocFave.create(user=who, doc=doc, faved_at=when)
    visit(stale, member, now - 8 * 86400)  # before the week
    assert old.id not in ids(call("explore.docs.getPopular"))
    # faved: 1 visitor + 3 for a fave this week; only_faved: 3; visited: 2 visitors; fresh:
    # posted this week, no score; faves before the week count for nothing (nor does the counter).
    got = call("explore.docs.getPopular")
    assert ids(got) == [faved.id, only_faved.id, visited.id, fresh.id]
    # A token never adds the caller's own private documents.
    assert ids(call("explore.docs.getPopular", token=token_for(owner, doc="read"))) == ids(got)


def test_popular_paging_safesurf_and_media(call, owner, stranger, make_doc, clock):
    for level in (1, 2, 3):
        make_doc(owner, safety=level)
    video = make_doc(owner, media="video")
    clock.advance(3600)  # make_doc posts a few seconds after now; a later post is not "of the week"
    assert len(ids(call("explore.docs.getPopular"))) == 2
    assert len(ids(call("explore.docs.getPopular", safesurf=3))) == 3  # capped at 2
    assert ids(call("explore.docs.getPopular", media="video")) == [video.id]
    for _ in range(60):
        make_doc(owner)
    clock.advance(3600)
    got = call("explore.docs.getPopular", per_page=500)["docs"]
    assert (got["per_page"], got["count"], got["total"], got["pages"]) == ("50", "50", "62",
                                                                          "2")
    assert call("explore.docs.getPopular")["docs"]["per_page"] == "20"
    assert call("explore.docs.getPopular", safesurf=4)["api"]["code"] == "2"


# --- explore.docs.homepage -----------------------------------------------------------------------

def test_homepage_is_each_members_latest_all_audience_doc(call, owner, member, stranger,
                                                          make_doc, token_for):
    make_doc(owner)
    owners_latest = make_doc(owner)
    make_doc(owner, safety=2)
    make_doc(owner, is_public=False)
    members = make_doc(member)
    make_doc(stranger, safety=3)
    expected = [members.id, owners_latest.id]
    assert ids(call("explore.docs.homepage")) == expected
    assert ids(call("explore.docs.homepage", token=token_for(owner, doc="read"))) == expected
    got = call("explore.docs.homepage", per_page=1, page=2, extra="dates,license")["docs"]
    assert ids({"docs": got}) == [owners_latest.id] and got["pages"] == "2"
    assert "dates" in got["doc"][0]


# --- explore.groups.getRandom ----------------------------------------------------------------

def test_groups_random_count(call):
    assert call("explore.groups.getRandom", count=50)["groups"]["group"] == []
    assert call("explore.groups.getRandom", count=0)["api"]["code"] == "2"


# --- no query per row ---------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "params"), [
    ("tags.docs.getList", {"type": "keyword", "id": "car", "extra": "owner,dates,original"}),
    ("tags.user.getList", {"user_id": "owner"}),
    ("tags.user.getPopular", {"user_id": "owner"}),
    ("explore.docs.getPopular", {"extra": "owner,dates,geo"}),
    ("explore.docs.homepage", {"extra": "owner,dates,geo"}),
])
def test_no_query_per_row(method, params, call, owner, member, stranger, make_doc, tag,
                          count_queries, token_for, clock):
    users = [owner, member, stranger] + [store.add_user(f"user{n}", "pw-pw-pw-pw")
                                         for n in range(27)]
    for n, user in enumerate(users):
        doc = tag(make_doc(user), "car", f"word{n}")
        tag(make_doc(owner), f"own{n}")
        visit(doc, owner, int(clock()))
    token = token_for(member, doc="read")
    call(method, token=token, **params)  # warm-up: first use of a token may write (last used)
    size = "count" if method.startswith("tags.user") else "per_page"
    counts = []
    for n in (2, 30):
        with count_queries() as log:
            got = call(method, token=token, **{size: n}, **params)
        items = got.get("docs", got.get("tags"))
        assert len(items["doc" if "docs" in got else "tag"]) == n
        counts.append(len(log))
    assert counts[0] <= counts[1] <= counts[0] + 1  # a full page counts its total, once
    assert counts[1] <= 5


# --- review fixes (issue 13) --------------------------------------------------------------------

def test_a_tag_id_names_its_keyword_only_to_whoever_may_see_its_doc(call, owner, member, stranger,
                                                                   make_doc, tag, token_for):
    hidden = tag(make_doc(owner, is_public=False), "secretword")
    tag_id = Tag.get(Tag.doc == hidden).id
    shown = tag(make_doc(stranger), "secretword")  # a public doc shares the keyword
    missing = call("tags.docs.getList", type="keyword", id=999999)
    for who in ({}, {"token": token_for(member, doc="read")}, {"token": token_for(owner)}):
        for kind in ("keyword", "machine"):
            assert call("tags.docs.getList", type=kind, id=tag_id, **who) == missing
    assert ids(call("tags.docs.getList", type="keyword", id=tag_id,
                    token=token_for(owner, doc="read"))) == [shown.id, hidden.id]
    assert ids(call("tags.docs.getList", type="keyword", id="secretword")) == [shown.id]


def test_every_listed_tag_id_lists_documents(call, owner, member, stranger, make_doc, tag,
                                             token_for):
    tag(make_doc(owner), "open", members=[member, stranger])
    tag(make_doc(owner, safety=2), "moderate", members=[member])
    tag(make_doc(owner, safety=3), "adult", "ns:p=v")
    tag(make_doc(owner, is_public=False), "private", members=[member])
    User.update(status="closed").where(User.id == stranger.id).execute()
    for who, listed in (({}, {"open"}), ({"token": token_for(member, doc="read")}, {"open"}),
                        ({"token": token_for(owner, doc="read")},
                         {"open", "moderate", "adult", "ns:p=v", "private"})):
        for method in ("tags.user.getList", "tags.user.getPopular"):
            got = call(method, user_id=owner.id, type="keyword", **who)["tags"]["tag"]
            assert {t["tag"] for t in got} == listed
            for kind in ("keyword", "member", "machine"):
                for row in call(method, user_id=owner.id, type=kind, **who)["tags"]["tag"]:
                    docs = call("tags.docs.getList", type=kind, id=row["id"], **who)["docs"]
                    assert int(docs["total"]) >= 1, (who, method, kind, row)
    members = call("tags.user.getList", user_id=owner.id, type="member")["tags"]["tag"]
    assert [int(t["id"]) for t in members] == [member.id]  # the closed stranger is left out
    assert call("tags.docs.getList", type="member", id=stranger.id)["api"]["code"] == "1"


def test_homepage_takes_each_members_latest_posted_doc(call, owner, member, make_doc, clock):
    now = int(clock())
    latest = make_doc(owner, posted_at=now - 60)
    make_doc(owner, posted_at=now - 3600)  # a higher id, posted earlier
    tie_low = make_doc(member, posted_at=now - 600)
    tie_high = make_doc(member, posted_at=now - 600)
    assert ids(call("explore.docs.homepage")) == [latest.id, tie_high.id]
    assert tie_low.id < tie_high.id


def test_popular_week_ends_now(call, owner, member, stranger, make_doc, clock):
    now = int(clock())
    make_doc(owner, posted_at=now + 86400)  # posted "tomorrow": not of this week
    visited = make_doc(owner, posted_at=now - 30 * 86400)
    ahead = make_doc(owner, posted_at=now - 30 * 86400)
    visit(visited, member, now - 60)
    visit(ahead, member, now + 3600)
    visit(ahead, stranger, now + 3600)
    got = call("explore.docs.getPopular")["docs"]
    assert ids({"docs": got}) == [visited.id] and got["total"] == "1"


def test_popular_ranks_once_per_call(call, owner, member, make_doc, clock, count_queries):
    now = int(clock())
    for _ in range(5):
        visit(make_doc(owner, posted_at=now - 30 * 86400), member, now - 60)
    for per_page, total in ((2, "5"), (10, "5")):  # a full page, then the last one
        with count_queries() as log:
            got = call("explore.docs.getPopular", per_page=per_page)["docs"]
        assert got["total"] == total
        ranked = [sql for sql in log.statements if "doc_visits" in sql]
        assert len(ranked) == 1, ranked
    assert call("explore.docs.getPopular", per_page=2, page=3)["docs"]["total"] == "5"
    past = call("explore.docs.getPopular", per_page=2, page=9)["docs"]
    assert (past["total"], past["doc"]) == ("5", [])


def test_week_visits_have_their_index(ctx):
    indexes = {tuple(i.columns) for i in db.obj.get_indexes("doc_visits")}
    assert ("visited_at", "doc_id") in indexes


def test_getrecent_still_declared(call):
    assert call("explore.docs.getRecent", count=1)["docs"]["count"] == "0"


# --- through PyIpernity --------------------------------------------------------------------------

def test_every_new_method_through_pyipernity(live_server, api_key, owner, member, make_doc,
                                             tag, token_for, clock):
    doc = tag(make_doc(owner), "car", members=[member])
    visit(doc, member, int(clock()))
    api = IpernityAPI(api_key.key, api_key.secret, token=token_for(owner, doc="read"),
                      url=live_server.base_url + "/api/")
    tags = api.tags.user.getList(type="keyword")["tags"]  # user_id: the token's
    assert [t["tag"] for t in tags["tag"]] == ["car"]
    found = api.tags.docs.getList(type="keyword", id=tags["tag"][0]["id"])["docs"]
    assert [d["doc_id"] for d in found["doc"]] == [str(doc.id)]
    assert api.tags.user.getPopular(user_id=owner.id, type="member")["tags"]["tag"][0][
        "id"] == str(member.id)
    assert [d["doc_id"] for d in api.explore.docs.getPopular()["docs"]["doc"]] == [str(doc.id)]
    walked = list(api.walk_data("explore.docs.homepage", "docs.doc", per_page=1))
    assert [d["doc_id"] for d in walked] == [str(doc.id)]
    assert api.explore.groups.getRandom(count=5)["groups"] == {"count": "0", "group": []}
