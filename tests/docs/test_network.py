"""network.getList, network.autocomplete, network.docs.getRecent (issue 13): shapes, flags as in
PyIpernity's methods.json, relation filters, paging, visibility, closed members, errors, query
counts, and each called through PyIpernity."""

from __future__ import annotations

import pytest
from ipernity import IpernityAPI

from api.models.docs import Relation
from keys import store
from keys.models import User
from tests.docs.methods_json import assert_listed_as_in_pyipernity
from tests.docs.shapes import compare, our_names

NEW_METHODS = ("network.getList", "network.autocomplete", "network.docs.getRecent")
OWNER_CARD = {"docs/doc/owner@username", "docs/doc/owner@realname"}
RELATION = ("isfamily", "isfriend", "iscontact", "revfamily", "revfriend", "revcontact")


@pytest.fixture
def people(ctx):
    """``people("ann", "bob")``: open members, named as given (realname: the name capitalized)."""

    def make(*names: str) -> list[User]:
        return [store.add_user(name, f"{name}-password-long", realname=name.capitalize())
                for name in names]

    return make


def count(user: User, contact: User, *, family: bool = False, friend: bool = False) -> None:
    """``user`` counts ``contact`` in the network (as family and/or friend, or neither)."""
    Relation.create(user=user, contact=contact, is_family=family, is_friend=friend)


def close(user: User) -> None:
    User.update(status="closed").where(User.id == user.id).execute()


def names(answer: dict) -> list[str]:
    return [u["username"] for u in answer["network"]["user"]]


def ids(answer: dict) -> list[int]:
    return [int(d["doc_id"]) for d in answer["docs"]["doc"]]


@pytest.fixture
def network(owner, people):
    """owner's network: fam (family), pal (friend), both, plain (neither), gone (closed)."""
    fam, pal, both, plain, gone = people("fam", "pal", "both", "plain", "gone")
    count(owner, fam, family=True)
    count(owner, pal, friend=True)
    count(owner, both, family=True, friend=True)
    count(owner, plain)
    count(owner, gone, friend=True)
    close(gone)
    return {"fam": fam, "pal": pal, "both": both, "plain": plain, "gone": gone}


# --- shapes (method-shapes.md) and the registry --------------------------------------------------

def test_shapes(call, owner, network, make_doc, token_for):
    token = token_for(owner, network="read", doc="read")
    compare("network.getList", call.raw("network.getList", "xml", token=token,
                                        extra="count").content)
    compare("network.getList", call.raw("network.getList", "xml", token=token,
                                        extra="count,realname,location").content,
            added={"network/user@realname", "network/user/location",
                   "network/user/location@country", "network/user/location@town"})
    # Anonymous: no caller to relate the members to.
    compare("network.getList", call.raw("network.getList", "xml", user_id=owner.id,
                                        extra="count").content,
            absent={"network/user/relation", *(f"network/user/relation@{a}" for a in RELATION)})
    make_doc(network["pal"])
    compare("network.docs.getRecent", call.raw("network.docs.getRecent", "xml",
                                               token=token).content,
            added={"docs/doc@safety"} | OWNER_CARD)
    # The original's example has no payload; ours lists the members as network.getList does.
    got = our_names(call.raw("network.autocomplete", "xml", token=token, query="p").content)
    assert got == {"network", "network@count", "network/user", "network/user/relation",
                   *(f"network/user@{a}" for a in ("user_id", "username", "alias", "icon",
                                                   "realname")),
                   *(f"network/user/relation@{a}" for a in RELATION)}


def test_empty_lists_keep_their_item_key(call, owner, token_for):
    token = token_for(owner, network="read")
    assert call("network.getList", token=token)["network"] == {
        "count": "0", "page": "1", "pages": "0", "total": "0", "per_page": "20", "user": []}
    assert call("network.autocomplete", token=token, query="x")["network"] == {"count": "0",
                                                                               "user": []}
    assert call("network.docs.getRecent", token=token)["docs"] == {"count": "0", "show": "5",
                                                                   "doc": []}


def test_flags_and_permissions_equal_pyipernity(call):
    assert_listed_as_in_pyipernity(call, NEW_METHODS)


# --- network.getList ----------------------------------------------------------------------------

@pytest.mark.parametrize(("relation", "expected"), [
    (None, ["both", "fam", "pal", "plain"]), (0, ["both", "fam", "pal", "plain"]),
    (1, ["both", "fam"]), (2, ["both", "pal"]), (3, ["both", "fam", "pal"]), (4, ["plain"]),
    (8, [])])
def test_own_network_by_relation(call, owner, network, token_for, relation, expected):
    token = token_for(owner, network="read")
    params = {} if relation is None else {"relation": relation}
    got = call("network.getList", token=token, **params)
    assert names(got) == expected  # by name; the closed member is left out
    assert got["network"]["total"] == str(len(expected))


def test_each_member_says_how_the_caller_and_they_count_each_other(call, owner, network,
                                                                    token_for):
    count(network["pal"], owner, family=True)
    users = {u["username"]: u for u in call("network.getList", token=token_for(
        owner, network="read"), extra="realname")["network"]["user"]}
    assert users["pal"]["relation"] == {"isfamily": "0", "isfriend": "1", "iscontact": "1",
                                        "revfamily": "1", "revfriend": "0", "revcontact": "1"}
    assert users["plain"]["relation"] == {"isfamily": "0", "isfriend": "0", "iscontact": "1",
                                          "revfamily": "0", "revfriend": "0", "revcontact": "0"}
    assert users["pal"]["realname"] == "Pal" and users["pal"]["alias"] == "pal"
    assert users["pal"]["icon"].endswith(".png")


def test_someone_elses_network_tells_who_not_how(call, owner, member, network, token_for):
    expected = ["both", "fam", "pal", "plain"]
    anonymous = call("network.getList", user_id="owner")
    assert names(anonymous) == expected
    assert all("relation" not in u for u in anonymous["network"]["user"])
    token = token_for(member, network="read")
    count(member, network["pal"], family=True)
    seen = call("network.getList", token=token, user_id=owner.id)["network"]["user"]
    assert [u["username"] for u in seen] == expected
    # The relation is the caller's (member's) own, never how owner counts them.
    pal = next(u for u in seen if u["username"] == "pal")
    assert (pal["relation"]["isfamily"], pal["relation"]["isfriend"]) == ("1", "0")
    assert next(u for u in seen if u["username"] == "fam")["relation"]["iscontact"] == "0"
    for relation in (1, 2, 3, 4, 8):
        for who in ({}, {"token": token}):
            got = call("network.getList", user_id=owner.id, relation=relation, **who)
            assert got["api"]["code"] == "2"


def test_count_extra_counts_what_the_caller_may_see(call, owner, member, network, make_doc,
                                                    token_for):
    pal = network["pal"]
    make_doc(pal)
    make_doc(pal, is_public=False, is_friend=True)
    make_doc(pal, is_public=False)
    count(pal, owner, friend=True)
    count(pal, member)

    def pal_count(**who) -> dict:
        users = call("network.getList", user_id=owner.id, extra="count", **who)["network"]["user"]
        return next(u["count"] for u in users if u["username"] == "pal")

    assert pal_count() == {"docs": "1", "posts": "0", "network": "2"}
    assert pal_count(token=token_for(owner, network="read", doc="read"))["docs"] == "2"
    assert pal_count(token=token_for(member, network="read", doc="read"))["docs"] == "1"
    listed = call("network.getList", user_id=owner.id, extra="count")
    assert all("location" not in u and "realname" not in u for u in listed["network"]["user"])


def test_network_paging(call, owner, people, token_for):
    for user in people(*(f"m{n:02d}" for n in range(25))):
        count(owner, user)
    token = token_for(owner, network="read")
    got = call("network.getList", token=token, per_page=10, page=3)["network"]
    assert {k: got[k] for k in ("total", "page", "pages", "per_page", "count")} == {
        "total": "25", "page": "3", "pages": "3", "per_page": "10", "count": "5"}
    assert [u["username"] for u in got["user"]] == [f"m{n:02d}" for n in range(20, 25)]
    full = call("network.getList", token=token, per_page=10, page=2)["network"]
    assert (full["total"], full["count"]) == ("25", "10")
    assert call("network.getList", token=token)["network"]["per_page"] == "20"
    assert call("network.getList", token=token, per_page=500)["network"]["per_page"] == "100"
    past = call("network.getList", token=token, per_page=10, page=9)["network"]
    assert (past["total"], past["user"]) == ("25", [])


@pytest.mark.parametrize(("params", "code"), [
    ({"user_id": "nobody"}, "1"), ({}, "1"), ({"user_id": "gone"}, "1"),
    ({"user_id": "owner", "relation": 5}, "2"), ({"user_id": "owner", "relation": "x"}, "2"),
    ({"user_id": "owner", "page": 0}, "143")])
def test_network_list_errors(call, network, params, code):
    assert call("network.getList", **params)["api"]["code"] == code


def test_own_network_needs_network_read(call, owner, network, token_for):
    # Without network:read the token holder is anonymous here: no default user, no relations.
    token = token_for(owner, doc="read")
    assert call("network.getList", token=token)["api"]["code"] == "1"
    assert call("network.getList", token=token, user_id=owner.id, relation=1)["api"][
        "code"] == "2"
    assert names(call("network.getList", token=token_for(owner, network="read"),
                      relation=1)) == ["both", "fam"]


# --- network.autocomplete -----------------------------------------------------------------------

def test_autocomplete_matches_the_start_or_anywhere(call, owner, member, people, token_for):
    anna, joanna, bob, gone, _outside = people("anna", "joanna", "bob", "annabel", "annie")
    User.update(realname="Bob Annan").where(User.id == bob.id).execute()
    for user in (anna, joanna, bob, gone):
        count(owner, user, friend=user is anna)
    close(gone)  # annie is not in owner's network
    token = token_for(owner, network="read")
    assert names(call("network.autocomplete", token=token, query="ANN")) == ["anna"]
    assert names(call("network.autocomplete", token=token, query="ann", anywhere=1)) == [
        "anna", "bob", "joanna"]
    assert names(call("network.autocomplete", token=token, query="bob a")) == ["bob"]
    assert names(call("network.autocomplete", token=token, query="nn", anywhere=1,
                      relation=2)) == ["anna"]
    assert names(call("network.autocomplete", token=token, query="%", anywhere=1)) == []
    assert names(call("network.autocomplete", token=token, query="_", anywhere=1)) == []
    got = call("network.autocomplete", token=token, query="an")["network"]["user"]
    assert got[0]["realname"] == "Anna" and got[0]["relation"]["isfriend"] == "1"


def test_autocomplete_answers_at_most_20(call, owner, people, token_for):
    for user in people(*(f"m{n:02d}" for n in range(25))):
        count(owner, user)
    got = call("network.autocomplete", token=token_for(owner, network="read"), query="m")
    assert got["network"]["count"] == "20" and names(got)[0] == "m00"


@pytest.mark.parametrize(("params", "code"), [
    ({}, "2"), ({"query": "  "}, "2"), ({"query": "a", "relation": 7}, "2"),
    ({"query": "a", "anywhere": "maybe"}, "2")])
def test_autocomplete_errors(call, owner, token_for, params, code):
    token = token_for(owner, network="read")
    assert call("network.autocomplete", token=token, **params)["api"]["code"] == code


def test_autocomplete_needs_a_network_token(call, owner, token_for):
    assert call("network.autocomplete", query="a")["api"]["code"] == "106"  # token missing
    denied = call("network.autocomplete", query="a", token=token_for(owner, doc="read"))
    assert denied["api"]["code"] == "110"  # insufficient permissions


# --- network.docs.getRecent ---------------------------------------------------------------------

def test_a_friends_doc_shows_only_to_whom_its_owner_counts_as_friend(call, owner, member,
                                                                      people, make_doc,
                                                                      token_for):
    third, = people("third")
    public = make_doc(owner)
    friends = make_doc(owner, is_public=False, is_friend=True)
    family = make_doc(owner, is_public=False, is_family=True)
    make_doc(owner, is_public=False)  # private
    make_doc(owner, safety=3)  # adults only: network.docs.getRecent takes no safesurf
    for viewer in (member, third):
        count(viewer, owner)  # both keep owner in their network
    count(owner, member, friend=True)  # owner counts member as friend, not third

    def recent(user, **perms) -> list[int]:
        return ids(call("network.docs.getRecent", token=token_for(user, **perms)))

    assert recent(member, doc="read") == [friends.id, public.id]
    assert recent(third, doc="read") == [public.id]
    assert recent(member) == [public.id]  # without doc:read, only what anyone sees
    count(owner, third, family=True)
    assert recent(third, doc="read") == [family.id, public.id]
    assert recent(owner, doc="read") == []  # one's own docs are not one's network's
    assert call("network.docs.getRecent")["api"]["code"] == "106"


def test_recent_limit_per_member_hours_count_and_relation(call, owner, people, make_doc,
                                                          clock, token_for):
    fam, pal, plain, gone, stranger = people("fam", "pal", "plain", "gone", "stranger")
    count(owner, fam, family=True)
    count(owner, pal, friend=True)
    count(owner, plain)
    count(owner, gone)
    now = int(clock())
    old = make_doc(fam, posted_at=now - 30 * 3600)
    pals = [make_doc(pal, posted_at=now - 3600 + n) for n in range(12)]
    fams = [make_doc(fam, posted_at=now - 7200 + n) for n in range(3)]
    plains = [make_doc(plain, posted_at=now - 60)]
    make_doc(gone, posted_at=now - 60)
    make_doc(stranger, posted_at=now - 60)  # not in owner's network
    close(gone)
    token = token_for(owner, doc="read")

    def recent(**params) -> dict:
        return call("network.docs.getRecent", token=token, **params)

    got = recent()
    newest_pals = [d.id for d in reversed(pals)][:5]
    assert ids(got) == [plains[0].id, *newest_pals, *[d.id for d in reversed(fams)]]
    assert (got["docs"]["count"], got["docs"]["show"]) == ("9", "5")
    assert ids(recent(limit=2, relation=2)) == newest_pals[:2]
    assert recent(limit=50)["docs"]["show"] == "10"
    assert ids(recent(limit=50, relation=2)) == [d.id for d in reversed(pals)][:10]
    assert ids(recent(relation=1)) == [d.id for d in reversed(fams)]
    assert ids(recent(relation=3, limit=1)) == [pals[-1].id, fams[-1].id]
    assert ids(recent(relation=4)) == [plains[0].id]
    assert ids(recent(relation=8)) == []
    assert ids(recent(count=2)) == [plains[0].id, pals[-1].id]
    assert old.id not in ids(recent(limit=10, relation=1))
    assert ids(recent(hours=31, limit=10, relation=1)) == [*[d.id for d in reversed(fams)],
                                                          old.id]
    item = recent(extra="dates,count,geo", thumbsize="240", count=1)["docs"]["doc"][0]
    assert {"dates", "count", "owner"} <= set(item) and item["thumb"]["label"] == "240"
    clock.advance(800 * 3600)
    assert ids(recent(hours=10_000)) == []  # lowered to 744 hours: nothing that old


@pytest.mark.parametrize(("params", "code"), [
    ({"hours": 0}, "2"), ({"limit": 0}, "2"), ({"count": 0}, "2"), ({"relation": 5}, "2"),
    ({"hours": "x"}, "2"), ({"count": -1}, "2")])
def test_recent_errors(call, owner, token_for, params, code):
    got = call("network.docs.getRecent", token=token_for(owner, doc="read"), **params)
    assert got["api"]["code"] == code


# --- no query per row ---------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "params", "size"), [
    ("network.getList", {"extra": "count,realname,location"}, "per_page"),
    ("network.getList", {"extra": "count", "user_id": "member"}, "per_page"),
    ("network.docs.getRecent", {"extra": "owner,dates,count,geo,original"}, "count"),
])
def test_no_query_per_row(method, params, size, call, owner, member, people, make_doc,
                          count_queries, token_for):
    for user in people(*(f"user{n:02d}" for n in range(32))):
        count(owner, user, friend=True)
        count(member, user)
        count(user, owner, friend=True)
        make_doc(user, is_public=False, is_friend=True)
    token = token_for(owner, network="read", doc="read")
    call(method, token=token, **params)  # warm-up: first use of a token may write (last used)
    counts = []
    for n in (2, 30):
        with count_queries() as log:
            got = call(method, token=token, **{size: n}, **params)
        items = got["network"]["user"] if "network" in got else got["docs"]["doc"]
        assert len(items) == n
        counts.append(len(log))
    assert counts[0] == counts[1]
    assert counts[1] <= 7  # key and token, member, page, total, relations, 2 counts


def test_autocomplete_no_query_per_row(call, owner, people, count_queries, token_for):
    token = token_for(owner, network="read")
    call("network.autocomplete", token=token, query="u")
    counts = []
    for many in (1, 20):
        for user in people(*(f"u{many}x{n:02d}" for n in range(many))):
            count(owner, user)
        with count_queries() as log:
            got = call("network.autocomplete", token=token, query=f"u{many}x")
        assert got["network"]["count"] == str(many)
        counts.append(len(log))
    assert counts[0] == counts[1]


# --- through PyIpernity --------------------------------------------------------------------------

def test_every_new_method_through_pyipernity(live_server, api_key, owner, member, make_doc,
                                             token_for):
    count(owner, member, friend=True)
    count(member, owner, friend=True)
    doc = make_doc(member, is_public=False, is_friend=True)
    api = IpernityAPI(api_key.key, api_key.secret,
                      token=token_for(owner, network="read", doc="read"),
                      url=live_server.base_url + "/api/")
    listed = api.network.getList(extra="count")["network"]  # user_id: the token's
    assert [u["user_id"] for u in listed["user"]] == [str(member.id)]
    assert listed["user"][0]["relation"]["revfriend"] == "1"
    walked = list(api.walk_data("network.getList", "network.user", user_id=member.id,
                                per_page=1))
    assert [u["user_id"] for u in walked] == [str(owner.id)]
    found = api.network.autocomplete(query="mem")["network"]["user"]
    assert [u["username"] for u in found] == ["member"]
    recent = api.network.docs.getRecent(hours=1, limit=1)["docs"]
    assert [d["doc_id"] for d in recent["doc"]] == [str(doc.id)] and recent["show"] == "1"


@pytest.mark.parametrize("query", ["y" * 50_000, "_" * 25_000, "é" * 25_000, "a" * 129])
def test_a_query_longer_than_any_name_matches_none(call, owner, member, token_for, query):
    """SQLite refuses LIKE patterns over 50,000 bytes: a 500 in review (the escaped ``_`` doubles
    a query's length). No name is longer than 128 characters."""
    count(owner, member)
    answer = call("network.autocomplete", token=token_for(owner, network="read"), query=query,
                  anywhere=1, http="POST")
    assert answer["api"]["status"] == "ok", answer["api"]
    assert answer["network"]["count"] == "0"
