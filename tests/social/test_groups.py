"""group.* (issue 14), explore.groups.getRandom and doc.getContainers' groups: shapes, flags as in
PyIpernity's methods.json, membership and moderation, the pool's visibility, search, paging,
errors, query counts, two clients at once, the pages, and each method through PyIpernity."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests
from ipernity import IpernityAPI

from api.content.groups import (
    GroupRefused,
    create_group,
    decide_doc,
    decide_request,
    invite,
    join,
    leave,
)
from api.models.docs import Relation
from api.models.groups import Group, GroupDoc, GroupMember
from api.signing import md5
from keys.db import db
from tests.auth.conftest import Browser, csrf_of
from tests.docs.methods_json import assert_listed_as_in_pyipernity
from tests.docs.shapes import compare

NEW_METHODS = ("group.get", "group.getList", "group.search", "group.docs.add",
               "group.docs.remove", "group.docs.getList", "group.docs.getContext",
               "explore.groups.getRandom")
YOU_ADDED = {"isinvited", "isrequested", "pending"}
CARD = ("count", "dates", "visibility")


@pytest.fixture
def make_group(ctx, clock):
    """``make_group(owner, title, access="open", **fields)``: a group made as the page makes it."""

    def make(owner: Any, title: str = "Blue skies", *, access: str = "open",
             description: str = "", lang: str = "en", is_public: bool = True) -> Group:
        return create_group(owner, title=title, description=description, lang=lang,
                            access=access, is_public=is_public, now=int(clock()))

    return make


@pytest.fixture
def add(call, token_for):
    """``add(user, group, *docs)``: group.docs.add through the API, its answer."""

    def run(user: Any, group: Group, *docs: Any) -> dict:
        return call("group.docs.add", token=token_for(user, doc="write"), group_id=group.id,
                    doc_id=",".join(str(d.id) for d in docs))

    return run


def pool(call, group: Group, **params: Any) -> list[int]:
    got = call("group.docs.getList", group_id=group.id, **params)
    assert got["api"]["status"] == "ok", got
    return [int(d["doc_id"]) for d in got["group"]["docs"]["doc"]]


def joined(group: Group, user: Any, clock: Any) -> None:
    assert join(group, user, int(clock())) == "member"


# --- shapes (method-shapes.md) and the registry --------------------------------------------------

def test_shapes(call, owner, member, make_group, make_doc, add, token_for, clock):
    group = make_group(owner, description="Skies")
    joined(group, member, clock)
    docs = [make_doc(member) for _ in range(3)]
    token = token_for(member, doc="write")
    compare("group.docs.add", call.raw("group.docs.add", "xml", token=token, group_id=group.id,
                                       doc_id=",".join(str(d.id) for d in docs)).content)
    you = {f"group/you@{name}" for name in YOU_ADDED}
    compare("group.get", call.raw("group.get", "xml", token=token, group_id=group.id).content,
            added={"group@group_id", *you})
    compare("group.get", call.raw("group.get", "xml", group_id=group.id).content,
            added={"group@group_id"},
            absent={"group/you", *(f"group/you@{a}" for a in (
                "docs", "isadmin", "ismember", "ismoderator", "joined_at", "visited_at"))})
    compare("group.getList", call.raw("group.getList", "xml", token=token).content,
            added={"groups@pages", "groups/group@title",
                   *(f"groups/group/you@{name}" for name in YOU_ADDED)})
    compare("group.search", call.raw("group.search", "xml", text="blue").content,
            added={"groups@count"})
    compare("explore.groups.getRandom", call.raw("explore.groups.getRandom", "xml").content)
    compare("group.docs.getList", call.raw("group.docs.getList", "xml",
                                           group_id=group.id).content,
            added={"group/docs@count", "group/docs/doc@safety"})
    compare("group.docs.getContext", call.raw("group.docs.getContext", "xml", group_id=group.id,
                                              doc_id=docs[1].id).content,
            added={f"{at}@safety" for at in ("doc", "prev/doc", "next/doc")})
    compare("doc.getContainers", call.raw("doc.getContainers", "xml", doc_id=docs[0].id).content,
            absent={"albums/album", *(f"albums/album@{a}" for a in (
                "album_id", "cover", "docs", "link", "title"))})
    compare("group.docs.remove", call.raw("group.docs.remove", "xml", token=token,
                                          group_id=group.id, doc_id=docs[0].id).content)


def test_empty_lists_keep_their_item_key(call, owner, make_group, token_for):
    token = token_for(owner, doc="read")
    assert call("explore.groups.getRandom")["groups"] == {"count": "0", "group": []}
    assert call("group.getList", token=token)["groups"]["group"] == []
    assert call("group.search", text="nothing")["groups"]["group"] == []
    group = make_group(owner)
    assert call("group.docs.getList", group_id=group.id)["group"]["docs"]["doc"] == []


def test_flags_and_permissions_equal_pyipernity(call):
    assert_listed_as_in_pyipernity(call, NEW_METHODS)


# --- group.get, group.getList ------------------------------------------------------------------

def test_group_get_tells_the_caller_their_part(call, owner, member, make_group, make_doc, add,
                                               token_for, clock):
    group = make_group(owner, "Moderated", access="moderated", description="Rules <b>here</b>",
                       lang="fr")
    got = call("group.get", group_id=group.id)["group"]
    assert (got["id"], got["title"], got["lang"], got["description"]) == (
        str(group.id), "Moderated", "fr", "Rules <b>here</b>")
    assert got["quota"]["moderated"] == "1" and got["count"]["members"] == "1"
    assert got["link"].endswith(f"/group/{group.id}") and "you" not in got
    admin = call("group.get", group_id=group.id, token=token_for(owner))["group"]["you"]
    assert (admin["isadmin"], admin["ismember"], admin["ismoderator"]) == ("1", "1", "0")
    assert join(group, member, int(clock())) == "requested"
    asking = call("group.get", group_id=group.id, token=token_for(member))["group"]
    assert asking["you"]["isrequested"] == "1" and asking["can"]["add_doc"] == "0"
    decide_request(group, member.id, accept=True, now=int(clock()))
    doc = make_doc(member)
    assert add(member, group, doc)["group"]["pending"] == "1"
    you = call("group.get", group_id=group.id, token=token_for(member))["group"]["you"]
    assert (you["ismember"], you["docs"], you["pending"]) == ("1", "0", "1")
    clock.advance(60)
    call("group.get", group_id=group.id, token=token_for(member))
    assert GroupMember.get(GroupMember.user == member.id).visited_at == int(clock())


def test_a_private_group_is_seen_by_its_members_and_invited_only(call, owner, member, stranger,
                                                                 make_group, token_for, clock):
    group = make_group(owner, "Secret", access="invitation", is_public=False)
    for who in ({}, {"token": token_for(stranger)}):
        assert call("group.get", group_id=group.id, **who)["api"]["code"] == "1"
        assert call("group.docs.getList", group_id=group.id, **who)["api"]["code"] == "1"
        assert call("group.search", text="Secret", **who)["groups"]["total"] == "0"
    assert call("group.getList", user_id="owner")["groups"]["group"] == []
    invite(group, "member", int(clock()))
    seen = call("group.get", group_id=group.id, token=token_for(member))["group"]
    assert seen["you"]["isinvited"] == "1" and seen["visibility"]["ispublic"] == "0"
    assert call("group.getList", user_id="owner", token=token_for(member))["groups"][
        "total"] == "1"
    assert call("explore.groups.getRandom")["groups"]["group"] == []


def test_group_list_own_and_others(call, owner, member, stranger, make_group, token_for, clock):
    open_group = make_group(owner, "Abarth lovers")
    moderated = make_group(owner, "Kitty club", access="moderated")
    invited = make_group(owner, "Invitations only", access="invitation")
    joined(open_group, member, clock)
    join(moderated, member, int(clock()))
    invite(invited, "member", int(clock()))
    own = call("group.getList", token=token_for(member))["groups"]
    states = {g["title"]: (g["you"]["ismember"], g["you"]["isrequested"], g["you"]["isinvited"])
              for g in own["group"]}
    assert states == {"Abarth lovers": ("1", "0", "0"), "Kitty club": ("0", "1", "0"),
                      "Invitations only": ("0", "0", "1")}
    others = call("group.getList", user_id="member")["groups"]
    assert [g["title"] for g in others["group"]] == ["Abarth lovers"]
    assert "you" not in others["group"][0]
    mine = call("group.getList", user_id=member.id, token=token_for(stranger))["groups"]
    assert mine["group"][0]["you"]["ismember"] == "0"
    assert [g["title"] for g in call("group.getList", user_id="owner")["groups"]["group"]] == [
        "Abarth lovers", "Invitations only", "Kitty club"]
    paged = call("group.getList", user_id="owner", per_page=2, page=2)["groups"]
    assert (paged["total"], paged["pages"], paged["count"]) == ("3", "2", "1")


@pytest.mark.parametrize(("params", "code"), [
    ({}, "1"), ({"user_id": "nobody"}, "1"), ({"user_id": "owner", "page": 0}, "143")])
def test_group_list_errors(call, owner, params, code):
    assert call("group.getList", **params)["api"]["code"] == code


# --- the pool ------------------------------------------------------------------------------------

def test_the_pool_obeys_each_docs_visibility(call, owner, member, stranger, make_group,
                                             make_doc, add, token_for, relate, clock):
    group = make_group(owner)
    joined(group, member, clock)
    public = make_doc(member)
    private = make_doc(member, is_public=False)
    friends = make_doc(member, is_public=False, is_friend=True)
    got = add(member, group, public, private, friends)["group"]
    assert (got["added"], got["total"]) == ("3", "3")
    relate(member, owner, friend=True)
    assert pool(call, group) == [public.id]
    assert pool(call, group, token=token_for(stranger, doc="read")) == [public.id]
    assert pool(call, group, token=token_for(owner, doc="read")) == [friends.id, public.id]
    assert pool(call, group, token=token_for(owner)) == [public.id]  # no doc:read
    mine = pool(call, group, token=token_for(member, doc="read"))
    assert sorted(mine) == sorted([public.id, private.id, friends.id])
    assert call("group.get", group_id=group.id)["group"]["count"]["docs"] == "1"  # seen
    # doc.getContainers of the private doc: its owner sees the group, nobody else the doc.
    assert call("doc.getContainers", doc_id=private.id)["api"]["code"] == "1"
    containers = call("doc.getContainers", doc_id=private.id,
                      token=token_for(member, doc="read"))["groups"]
    assert (containers["total"], containers["added"]) == ("1", "1")


def test_moderated_group_docs_wait_for_a_moderator(call, owner, member, stranger, make_group,
                                                   make_doc, add, token_for, clock):
    group = make_group(owner, "A moderated group", access="moderated")
    assert join(group, member, int(clock())) == "requested"
    doc = make_doc(member)
    assert add(member, group, doc)["api"]["code"] == "3"  # not yet a member
    decide_request(group, member.id, accept=True, now=int(clock()))
    first = add(member, group, doc)["group"]
    assert (first["added"], first["pending"], first["doc"][0]["pending"]) == ("1", "1", "1")
    again = add(member, group, doc)["group"]
    assert (again["added"], again["skipped"], again["pending"]) == ("0", "1", "1")
    assert pool(call, group) == []
    waiting = call("doc.getContainers", doc_id=doc.id, token=token_for(member, doc="read"))
    assert (waiting["groups"]["pending"], waiting["groups"]["group"][0]["pending"]) == ("1", "1")
    assert call("doc.getContainers", doc_id=doc.id)["groups"]["total"] == "0"
    assert call("group.getList", token=token_for(member))["groups"]["group"][0]["you"][
        "pending"] == "1"
    assert decide_doc(group, doc.id, accept=True, now=int(clock()))
    assert not decide_doc(group, doc.id, accept=True, now=int(clock()))
    assert pool(call, group) == [doc.id]
    assert Group.get_by_id(group.id).last_doc_at == int(clock())
    # The admin's own docs go straight in.
    own = make_doc(owner)
    assert add(owner, group, own)["group"]["pending"] == "0"
    assert call("doc.getContainers", doc_id=doc.id)["groups"]["added"] == "1"


def test_add_and_remove_rules(call, owner, member, stranger, make_group, make_doc, add,
                              token_for, clock):
    group = make_group(owner)
    joined(group, member, clock)
    joined(group, stranger, clock)
    mine, theirs = make_doc(member), make_doc(stranger)
    got = add(member, group, mine, theirs)["group"]
    assert [(d["doc_id"], d["added"], d["error"]) for d in got["doc"]] == [
        (str(mine.id), "1", "0"), (str(theirs.id), "0", "1")]
    add(stranger, group, theirs)

    def remove(user: Any, *docs: Any) -> dict:
        return call("group.docs.remove", token=token_for(user, doc="write"), group_id=group.id,
                    doc_id=",".join(str(d.id) for d in docs))

    got = remove(member, mine, theirs)["group"]
    assert (got["removed"], got["skipped"], got["total"]) == ("1", "1", "1")
    assert remove(owner, theirs)["group"]["removed"] == "1"  # the admin removes any
    assert pool(call, group) == []


@pytest.mark.parametrize(("method", "params", "code"), [
    ("group.docs.add", {"group_id": 999}, "1"), ("group.docs.add", {"doc_id": None}, "2"),
    ("group.docs.add", {"doc_id": "x"}, "2"), ("group.docs.add", {"doc_id": ""}, "2"),
    ("group.docs.add", {"doc_id": ",".join(map(str, range(1, 102)))}, "2"),
    ("group.docs.remove", {"group_id": 999}, "1"), ("group.docs.remove", {"doc_id": "y"}, "2"),
])
def test_write_errors(call, owner, make_group, make_doc, token_for, method, params, code):
    group = make_group(owner)
    doc = make_doc(owner)
    values = {"group_id": group.id, "doc_id": doc.id, **params}
    assert call(method, token=token_for(owner, doc="write"), **values)["api"]["code"] == code


@pytest.mark.parametrize(("params", "code"), [
    ({"group_id": 999}, "1"), ({"user_id": "nobody"}, "2"), ({"media": "film"}, "3"),
    ({"safesurf": 7}, "3"), ({"page": 0}, "143")])
def test_pool_list_errors(call, owner, make_group, params, code):
    group = make_group(owner)
    assert call("group.docs.getList", **{"group_id": group.id, **params})["api"]["code"] == code


def test_pool_filters_and_paging(call, owner, member, make_group, make_doc, add, clock):
    group = make_group(owner)
    joined(group, member, clock)
    theirs = [make_doc(member, media="video" if n % 2 else "photo") for n in range(5)]
    mine = make_doc(owner)
    for doc in theirs:
        clock.advance(1)
        add(member, group, doc)
    clock.advance(1)
    add(owner, group, mine)
    newest_first = [mine.id, *[d.id for d in reversed(theirs)]]
    assert pool(call, group) == newest_first
    assert pool(call, group, user_id="member") == newest_first[1:]
    assert pool(call, group, media="video") == [theirs[3].id, theirs[1].id]
    page = call("group.docs.getList", group_id=group.id, per_page=4, page=2,
                extra="owner,dates")["group"]["docs"]
    assert (page["total"], page["pages"], page["count"]) == ("6", "2", "2")
    assert page["doc"][0]["owner"]["username"] == "member" and "dates" in page["doc"][0]


def test_context_in_the_pool(call, owner, member, make_group, make_doc, add, clock):
    group = make_group(owner)
    joined(group, member, clock)
    docs = [make_doc(member) for _ in range(5)]
    for doc in docs:
        clock.advance(1)
        add(member, group, doc)
    hidden = make_doc(member, is_public=False)
    add(member, group, hidden)
    got = call("group.docs.getContext", group_id=group.id, doc_id=docs[2].id, prev=2, next=5,
               extra="owner")
    assert got["group"]["total"] == "5"
    assert [(d["index"], d["doc_id"]) for d in got["prev"]["doc"]] == [
        ("-1", str(docs[3].id)), ("-2", str(docs[4].id))]
    assert [d["doc_id"] for d in got["next"]["doc"]] == [str(docs[1].id), str(docs[0].id)]
    assert got["doc"]["link"].endswith(f"/{docs[2].id}/in/group/{group.id}")
    assert got["doc"]["owner"]["username"] == "member"
    assert call("group.docs.getContext", group_id=group.id, doc_id=hidden.id)["api"][
        "code"] == "4"
    assert call("group.docs.getContext", group_id=group.id, doc_id=docs[0].id,
                prev=51)["api"]["code"] == "3"
    none = call("group.docs.getContext", group_id=group.id, doc_id=docs[0].id, prev=0)
    assert none["prev"] == {"count": "0", "doc": []} and none["next"]["count"] == "0"


# --- group.search, explore.groups.getRandom ----------------------------------------------------

def test_search_by_text_language_and_sort(call, owner, make_group, clock):
    abarth = make_group(owner, "Abarth lovers", description="Small fast cars")
    clock.advance(10)
    kitty = make_group(owner, "Kitty club", description="Cats and CARS 100%", lang="fr")
    clock.advance(10)
    make_group(owner, "Under_score", description="nothing")

    def titles(**params: Any) -> list[str]:
        got = call("group.search", **params)
        assert got["api"]["status"] == "ok", got
        return [g["title"] for g in got["groups"]["group"]]

    assert titles(text="cars") == ["Kitty club", "Abarth lovers"]  # then newest first
    assert set(titles(text="CARS")) == {"Abarth lovers", "Kitty club"}
    assert titles(text="cars small") == ["Abarth lovers"]
    assert titles(text="cars", lang="fr") == ["Kitty club"]
    assert titles(text="100%") == ["Kitty club"]
    assert titles(text="%") == ["Kitty club"]  # a wildcard matches itself only
    assert titles(text="k_t") == [] and titles(text="_") == ["Under_score"]
    assert titles(text="club lovers") == []
    assert titles(sort="created-asc") == ["Abarth lovers", "Kitty club", "Under_score"]
    assert titles(sort="created-desc") == ["Under_score", "Kitty club", "Abarth lovers"]
    assert titles(text="club") == ["Kitty club"]
    assert titles(text="lovers")[0] == "Abarth lovers"
    got = call("group.search", per_page=2, page=2)["groups"]
    assert (got["total"], got["pages"], got["count"]) == ("3", "2", "1")
    assert abarth.id != kitty.id


@pytest.mark.parametrize(("params", "code"), [
    ({"sort": "popular"}, "2"), ({"lang": "xx"}, "2"), ({"text": "a" * 201}, "2"),
    ({"text": " ".join("w" * 11)}, "2"), ({"page": 0}, "143")])
def test_search_errors(call, params, code):
    assert call("group.search", **params)["api"]["code"] == code


def test_random_groups_are_public_and_counted(call, owner, member, make_group, clock):
    groups = [make_group(owner, f"Group {n}") for n in range(12)]
    make_group(owner, "Hidden", is_public=False)
    joined(groups[0], member, clock)
    got = call("explore.groups.getRandom")["groups"]
    assert got["count"] == "10" and len({g["group_id"] for g in got["group"]}) == 10
    assert all(g["title"].startswith("Group ") for g in got["group"])
    every = {g["group_id"]: g for g in call("explore.groups.getRandom", count=500)["groups"][
        "group"]}
    assert len(every) == 12 and every[str(groups[0].id)]["count"]["members"] == "2"
    assert call("explore.groups.getRandom", count=0)["api"]["code"] == "2"


# --- membership through the content rules ----------------------------------------------------

def test_invitations_and_leaving(owner, member, stranger, make_group, clock):
    group = make_group(owner, "Invitations only", access="invitation")
    with pytest.raises(GroupRefused):
        join(group, stranger, int(clock()))
    invite(group, "member", int(clock()))
    invite(group, "member", int(clock()))  # twice: one row
    assert GroupMember.select().where(GroupMember.group == group.id).count() == 2
    assert join(group, member, int(clock())) == "member"
    with pytest.raises(GroupRefused):
        invite(group, "nobody", int(clock()))
    with pytest.raises(GroupRefused):
        leave(group, owner)  # the creator stays
    assert leave(group, member) and not leave(group, member)


# --- two clients at once ------------------------------------------------------------------------

def test_two_clients_adding_the_same_doc_at_once(live_server, api_key, owner, member,
                                                 make_group, make_doc, token_for, clock):
    group = make_group(owner)
    joined(group, member, clock)
    docs = [make_doc(member) for _ in range(8)]
    token = token_for(member, doc="write")
    barrier = threading.Barrier(2)
    answers: list[dict] = []

    def add_all() -> None:
        session = requests.Session()
        barrier.wait()
        for doc in docs:
            params = {"api_key": api_key.key, "auth_token": token, "group_id": str(group.id),
                      "doc_id": str(doc.id)}
            params["api_sig"] = md5.signature(params, "group.docs.add", api_key.secret)
            answers.append(session.post(f"{live_server.base_url}/api/group.docs.add/json",
                                        data=params, timeout=30).json())

    threads = [threading.Thread(target=add_all) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(a["api"]["status"] == "ok" for a in answers), answers
    assert sum(int(a["group"]["added"]) for a in answers) == len(docs)
    assert GroupDoc.select().where(GroupDoc.group == group.id).count() == len(docs)


def test_one_member_asking_four_times_at_once_is_one_request(owner, member, make_group, clock):
    group = make_group(owner, access="moderated")
    barrier = threading.Barrier(4)

    def ask() -> None:
        with db.connection_context():
            barrier.wait()
            join(group, member, int(clock()))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert GroupMember.select().where(GroupMember.user == member.id).count() == 1


# --- no query per row ---------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "params"), [
    ("group.getList", {"user_id": "member"}),
    ("group.getList", {}),
    ("group.search", {"text": "group"}),
    ("explore.groups.getRandom", {}),
    ("group.docs.getList", {"extra": "owner,dates,geo,original"}),
])
def test_no_query_per_row(method, params, call, owner, member, make_group, make_doc, add,
                          count_queries, token_for, clock):
    groups = [make_group(owner, f"Group {n:02d}") for n in range(12)]
    for group in groups:
        joined(group, member, clock)
    docs = [make_doc(member) for _ in range(12)]
    add(member, groups[0], *docs)
    token = token_for(member, doc="read")
    extra = {"group_id": groups[0].id} if method.startswith("group.docs") else {}
    size = "count" if method.startswith("explore") else "per_page"
    call(method, token=token, **extra, **params)  # warm-up
    counts = []
    for n in (2, 11):
        with count_queries() as log:
            got = call(method, token=token, **{size: n}, **extra, **params)
        items = got["group"]["docs"]["doc"] if "group" in got else got["groups"]["group"]
        assert len(items) == n
        counts.append(len(log))
    assert counts[0] == counts[1], counts


# --- the pages ----------------------------------------------------------------------------------

def test_pages_create_join_moderate(client, owner, member, stranger, make_doc, call, token_for):
    admin, asker, outsider = Browser(client), Browser(client, "10.0.0.2"), Browser(client,
                                                                                   "10.0.0.3")
    admin.login("owner", "owner-password")
    asker.login("member", "member-password")
    outsider.login("stranger", "stranger-password")
    form = admin.get("/groups/new")
    assert form.status_code == 200
    refused = admin.post("/groups/new", {"csrf_token": csrf_of(form.text), "title": " ",
                                         "lang": "en", "access": "moderated"})
    assert refused.status_code == 400 and 'id="error"' in refused.text
    assert admin.post("/groups/new", {"csrf_token": "forged", "title": "X", "lang": "en",
                                      "access": "open"}).status_code == 403
    made = admin.post("/groups/new", {"csrf_token": csrf_of(form.text), "title": "Kitty club",
                                      "description": "Cats", "lang": "en",
                                      "access": "moderated", "is_public": "1"})
    assert made.status_code == 303
    page_url = made.headers["location"]
    group = Group.get(Group.title == "Kitty club")
    page = asker.get(page_url)
    assert "Ask to join" in page.text and 'id="members">1<' in page.text
    asked = asker.post(page_url, {"csrf_token": csrf_of(page.text), "action": "join"})
    assert "asked to join" in asked.text
    assert outsider.get(page_url + "/moderate").status_code == 404
    queue = admin.get(page_url + "/moderate")
    assert 'data-username="member"' in queue.text
    admin.post(page_url + "/moderate", {"csrf_token": csrf_of(queue.text), "what": "member",
                                        "id": str(member.id), "decision": "accept"})
    doc = make_doc(member, title="Tabby")
    page = asker.get(page_url)
    added = asker.post(page_url, {"csrf_token": csrf_of(page.text), "action": "add",
                                  "doc_id": str(doc.id)})
    assert "waits for a moderator" in added.text and f'data-doc-id="{doc.id}"' not in added.text
    queue = admin.get(page_url + "/moderate")
    assert f'data-doc-id="{doc.id}"' in queue.text
    admin.post(page_url + "/moderate", {"csrf_token": csrf_of(queue.text), "what": "doc",
                                        "id": str(doc.id), "decision": "accept"})
    assert f'data-doc-id="{doc.id}"' in outsider.get(page_url).text
    assert pool(call, group) == [doc.id]
    page = asker.get(page_url)
    left = asker.post(page_url, {"csrf_token": csrf_of(page.text), "action": "leave"})
    assert "You left the group." in left.text and 'id="members">1<' in left.text
    assert asker.get("/group/999").status_code == 404
    assert asker.get("/group/abc").status_code == 404
    listed = asker.get("/groups?q=kitty")
    assert f'data-group-id="{group.id}"' in listed.text


def test_invitation_on_the_pages(client, owner, member, make_group):
    group = make_group(owner, "Invitations only", access="invitation", is_public=False)
    admin, guest = Browser(client), Browser(client, "10.0.0.2")
    admin.login("owner", "owner-password")
    guest.login("member", "member-password")
    url = f"/group/{group.id}"
    assert guest.get(url).status_code == 404  # a private group is not seen before the invite
    page = admin.get(url)
    done = admin.post(url, {"csrf_token": csrf_of(page.text), "action": "invite",
                            "username": "member"})
    assert "member is invited." in done.text
    page = guest.get(url)
    assert "Accept the invitation" in page.text
    guest.post(url, {"csrf_token": csrf_of(page.text), "action": "join"})
    assert 'id="you">member<' in guest.get(url).text


# --- through PyIpernity --------------------------------------------------------------------------

def test_every_group_method_through_pyipernity(live_server, api_key, owner, member, make_group,
                                               make_doc, token_for, clock):
    group = make_group(owner, "Abarth lovers", description="Cars")
    joined(group, member, clock)
    docs = [make_doc(member) for _ in range(3)]
    Relation.create(user=member, contact=owner, is_friend=True)
    api = IpernityAPI(api_key.key, api_key.secret, token=token_for(member, doc="write"),
                      url=live_server.base_url + "/api/")
    added = api.group.docs.add(group_id=group.id, doc_id=",".join(str(d.id) for d in docs))
    assert added["group"]["added"] == "3"
    assert api.group.get(group_id=group.id)["group"]["you"]["docs"] == "3"
    assert [g["title"] for g in api.group.getList()["groups"]["group"]] == ["Abarth lovers"]
    assert api.group.search(text="cars")["groups"]["total"] == "1"
    walked = list(api.walk_data("group.docs.getList", "group.docs.doc", group_id=group.id,
                                per_page=2))
    assert [d["doc_id"] for d in walked] == [str(d.id) for d in reversed(docs)]
    context = api.group.docs.getContext(group_id=group.id, doc_id=docs[1].id)
    assert context["prev"]["doc"][0]["doc_id"] == str(docs[2].id)
    assert api.group.docs.remove(group_id=group.id, doc_id=docs[0].id)["group"][
        "removed"] == "1"
    assert api.explore.groups.getRandom()["groups"]["count"] == "1"
