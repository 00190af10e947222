"""The ``network.*`` family: a member's contacts, and their recent documents (spec §9 service
network, §10.1, §10.3, §10.4; method-shapes.md).

A member's network is the ``relations`` rows the member owns: each counts one contact as family
and/or friend, or as neither (a plain contact). ``relation`` filters it: 0 everyone (default),
1 family, 2 friends, 3 friends or family, 4 plain contacts (neither), 8 blocked members (none
are kept: an empty list). Closed members are never listed. Another member's network shows who
is in it, never how the member counts them: only ``relation=0`` there. The rules are written
down in docs/protocol-choices.md, "Network".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from peewee import Expression, fn

from api.content.access import find_open_member, safesurf_clause, viewer_of, visible_to
from api.content.listing import owned_docs
from api.content.trees import doc_trees, parse_extra, parse_thumbsize
from api.core.context import Call
from api.core.paging import NUMBER_OF, Paging
from api.core.registry import MethodGroup
from api.media.names import icon_url
from api.methods.common import InvalidArgument, Thumbsize, UserNotFound, extra_help
from api.models.docs import Doc, Relation
from keys.models import User

group = MethodGroup()

NETWORK_READ = {"network": "read"}
EVERYONE, FAMILY, FRIENDS, FRIENDS_OR_FAMILY, CONTACTS, BLOCKED = 0, 1, 2, 3, 4, 8  # §10.4
RELATIONS = (EVERYONE, FAMILY, FRIENDS, FRIENDS_OR_FAMILY, CONTACTS, BLOCKED)
LIST_EXTRAS = ("realname", "count", "location")  # spec §10.3
RECENT_EXTRAS = ("dates", "count", "geo", "medias", "original", "owner")
LIST_PAGE = Paging("members", default=20, maximum=100, wording=NUMBER_OF)  # spec §10.1
RECENT_COUNT, MAX_RECENT_COUNT = 50, 100  # spec §10.1, network.docs.getRecent
PER_MEMBER, MAX_PER_MEMBER = 5, 10  # ``limit``: documents per member
RECENT_HOURS, MAX_HOURS = 24, 744  # ``hours``: how far back (744 = 31 days)
AUTOCOMPLETE_COUNT = 20  # members an autocomplete answers at most
LONGEST_NAME = max(User.username.max_length, User.realname.max_length)  # characters

Relationship = Annotated[int, "0 everyone (default), 1 family, 2 friends, 3 friends & family, "
                              "4 contacts (neither family nor friend), 8 blocked members."]


def _relation_clause(relation: int) -> Expression | None:
    """The ``relations`` rows one ``relation`` value keeps; None keeps them all."""
    if relation not in RELATIONS:
        raise InvalidArgument(f"relation={relation}")
    return {
        EVERYONE: None,
        FAMILY: Relation.is_family == True,  # noqa: E712 (peewee expression)
        FRIENDS: Relation.is_friend == True,  # noqa: E712
        FRIENDS_OR_FAMILY: (Relation.is_family == True) | (Relation.is_friend == True),  # noqa: E712
        CONTACTS: (Relation.is_family == False) & (Relation.is_friend == False),  # noqa: E712
        BLOCKED: Relation.id.is_null(),  # never true: no member is ever blocked here
    }[relation]


def _network(owner_id: int, relation: int) -> list[Expression]:
    """WHERE clauses for the open members ``owner_id`` counts in the network (User joined to
    the owner's Relation row)."""
    where = [Relation.user == owner_id, User.status == "open"]
    clause = _relation_clause(relation)
    if clause is not None:
        where.append(clause)
    return where


def _members(owner_id: int, relation: int) -> Any:
    """The open members of ``owner_id``'s network, each with the owner's row, by name."""
    return (User.select(User)
            .join(Relation, on=(Relation.contact == User.id))
            .where(*_network(owner_id, relation))
            .order_by(fn.LOWER(User.username), User.id))


def _relations(caller: User | None, users: Sequence[User]) -> dict[int, dict[str, bool]]:
    """How the caller and each listed member count each other (user.get's ``relation``), in one
    query; none without a caller."""
    if caller is None or not users:
        return {}
    ids = [user.id for user in users]
    rows = {(row.user_id, row.contact_id): row for row in Relation.select().where(
        ((Relation.user == caller.id) & Relation.contact.in_(ids))
        | (Relation.user.in_(ids) & (Relation.contact == caller.id)))}
    out = {}
    for user_id in ids:
        mine, theirs = rows.get((caller.id, user_id)), rows.get((user_id, caller.id))
        out[user_id] = {"isfamily": bool(mine and mine.is_family),
                        "isfriend": bool(mine and mine.is_friend), "iscontact": mine is not None,
                        "revfamily": bool(theirs and theirs.is_family),
                        "revfriend": bool(theirs and theirs.is_friend),
                        "revcontact": theirs is not None}
    return out


def _counts(call: Call, users: Sequence[User]) -> dict[int, dict[str, int]]:
    """``<count docs posts network/>`` for each listed member, as user.get counts them (the docs
    the caller may see, every relations row the member owns): two grouped queries."""
    ids = [user.id for user in users]
    if not ids:
        return {}
    docs: Any = (Doc.select(Doc.owner, fn.COUNT(Doc.id))
                 .where(Doc.owner.in_(ids), visible_to(Doc, viewer_of(call)))
                 .group_by(Doc.owner).tuples())
    rows: Any = (Relation.select(Relation.user, fn.COUNT(Relation.id))
                 .where(Relation.user.in_(ids))
                 .group_by(Relation.user).tuples())
    docs, network = dict(docs), dict(rows)
    return {i: {"docs": docs.get(i, 0), "posts": 0, "network": network.get(i, 0)} for i in ids}


def _user_trees(call: Call, caller: User | None, users: Sequence[User],
                extras: set[str]) -> list[dict[str, Any]]:
    """``<user user_id username alias icon><relation/><count/></user>`` items, in a fixed
    number of queries."""
    relations = _relations(caller, users)
    counts = _counts(call, users) if "count" in extras else {}
    items = []
    for user in users:
        item: dict[str, Any] = {"user_id": user.id, "username": user.username,
                                "alias": user.username, "icon": icon_url(call.base_url, user)}
        if "realname" in extras:
            item["realname"] = user.realname
        item["relation"] = relations.get(user.id)
        if "count" in extras:
            item["count"] = counts[user.id]
        if "location" in extras:
            item["location"] = {"country": user.country, "town": user.town}
        items.append(item)
    return items


def _network_reader(call: Call) -> User | None:
    """The caller, when the call's token grants ``network:read``; else an anonymous view."""
    return call.user if call.allows("network", "read") else None


@group.method("network.getList", title="Return members of someone's network.",
              perms=NETWORK_READ, missing=UserNotFound, invalid=InvalidArgument,
              modified_at="1228086000",
              response='<network count="1" page="1" pages="1" total="1" per_page="20">'
                       '<user user_id="1234" username="john" alias="john" icon><relation '
                       'isfamily="0" isfriend="1" iscontact="1" revfriend="0" revfamily="1" '
                       'revcontact="1"/><count docs="256" posts="0" network="562"/></user>'
                       '</network>')
def get_list(call: Call,
             user_id: Annotated[str, "The member's ID or web alias; defaults to the "
                                     "authenticated user (the token's)."] = "",
             relation: Relationship = EVERYONE,
             extra: Annotated[str, extra_help(LIST_EXTRAS)] = "",
             per_page: Annotated[int | None, LIST_PAGE.per_page_help] = None,
             page: Annotated[int | None, LIST_PAGE.page_help] = None) -> dict:
    """Return the open members of a member's network, by name.

    ``relation`` filters the caller's own network (a token with network:read); another member's
    network lists who is in it without telling how the member counts them, so only relation 0
    is taken there (another is code 2). Each member's ``relation`` says how the caller and the
    member count each other, as in user.get (absent without a network:read token). A closed or
    unknown member is code 1.
    """
    caller = _network_reader(call)
    owner = find_open_member(user_id) if user_id.strip() else caller
    if owner is None:
        raise UserNotFound(user_id or "missing parameter user_id")
    is_own = caller is not None and owner.id == caller.id
    if not is_own and relation != EVERYONE:
        _relation_clause(relation)  # an unknown value is code 2 as well
        raise InvalidArgument(f"relation={relation}: only 0 for another member's network")
    paged = LIST_PAGE.page(page, per_page)
    query = _members(owner.id, relation)
    users = list(paged.apply(query))
    if len(users) < paged.per_page and (users or paged.page == 1):
        total = paged.offset + len(users)  # the last page: the count is known without a query
    else:
        total = int(query.order_by().count())
    items = _user_trees(call, caller, users, parse_extra(extra, LIST_EXTRAS))
    return {"network": {**paged.attrs(total, len(items)), "user": items}}


@group.method("network.autocomplete", title="Return the members matching a sub-query.",
              token=True, sign=True, perms=NETWORK_READ, missing=InvalidArgument,
              invalid=InvalidArgument, modified_at="1228086000",
              response='<network count="1"><user user_id="1234" username="john" alias="john" '
                       'icon realname="John B."><relation isfamily="0" isfriend="1" '
                       'iscontact="1" revfriend="0" revfamily="0" revcontact="0"/></user>'
                       '</network>')
def autocomplete(call: Call,
                 query: Annotated[str, "The beginning of a member's username or real name."],
                 anywhere: Annotated[bool, "1: match anywhere in the names, not only at "
                                           "their start."] = False,
                 relation: Relationship = EVERYONE) -> dict:
    """Return the members of the caller's network whose username or real name starts with
    ``query`` (contains it, with ``anywhere=1``), by name, 20 at most.

    Case does not matter (on SQLite, for ASCII letters only: its LIKE folds no other); ``%`` and
    ``_`` match themselves; a query longer than any name matches none. Closed members are left
    out. Each member carries its real name and how the caller and the member count each other.
    An empty query is code 2.
    """
    text = " ".join(query.split())
    if not text:
        raise InvalidArgument("query is empty")
    caller = call.user
    if caller is None:  # token=True: the dispatcher has answered 99 before
        raise InvalidArgument("no caller")
    if len(text) > LONGEST_NAME:  # no name is longer; SQLite refuses LIKE patterns over 50 KB
        return {"network": {"count": 0, "user": []}}

    def matches(field: Any) -> Expression:
        return field.contains(text) if anywhere else field.startswith(text)

    users = list(_members(caller.id, relation)
                 .where(matches(User.username) | matches(User.realname))
                 .limit(AUTOCOMPLETE_COUNT))
    items = _user_trees(call, caller, users, {"realname"})
    return {"network": {"count": len(items), "user": items}}


@group.method("network.docs.getRecent", title="Return recent uploads of the calling user's network",
              service="doc", token=True, sign=True, invalid=InvalidArgument,
              modified_at="1249941600",
              response='<docs count="12" show="5"><doc doc_id media license title><owner '
                       'user_id/><thumb label ext w h url/></doc></docs>')
def docs_get_recent(call: Call,
                    hours: Annotated[int, f"How many hours back (default {RECENT_HOURS}, max "
                                          f"{MAX_HOURS})."] = RECENT_HOURS,
                    limit: Annotated[int, f"Documents per member (default {PER_MEMBER}, max "
                                          f"{MAX_PER_MEMBER})."] = PER_MEMBER,
                    relation: Relationship = EVERYONE,
                    extra: Annotated[str, extra_help(RECENT_EXTRAS)] = "",
                    thumbsize: Thumbsize = "",
                    count: Annotated[int, f"How many documents (default {RECENT_COUNT}, max "
                                          f"{MAX_RECENT_COUNT})."] = RECENT_COUNT) -> dict:
    """Return the documents the members of the caller's network posted in the last ``hours``,
    newest first, at most ``limit`` per member, each with its owner.

    Only documents the caller may see (a family or friends' one when its owner counts the
    caller so, with a token granting doc:read, as everywhere), for all audiences (the method
    takes no safesurf); closed members' documents are left out. ``show`` is the per-member
    limit applied. Values over a maximum are lowered to it; below 1 they are code 2.
    """
    for name, value in (("hours", hours), ("limit", limit), ("count", count)):
        if value < 1:
            raise InvalidArgument(f"{name}={value}")
    caller = call.user
    if caller is None:  # token=True: the dispatcher has answered 99 before
        raise InvalidArgument("no caller")
    relation_only = _relation_clause(relation)
    per_member = min(limit, MAX_PER_MEMBER)
    viewer = viewer_of(call)
    network = Relation.select(Relation.contact).where(
        Relation.user == caller.id, *([relation_only] if relation_only is not None else []))
    # Each member's newest first, numbered: the (owner, posted_at) index serves the window.
    ranked = (Doc.select(Doc.id.alias("doc_id"),
                         fn.ROW_NUMBER().over(partition_by=[Doc.owner],
                                              order_by=[Doc.posted_at.desc(), Doc.id.desc()])
                         .alias("rank"))
              .where(Doc.owner.in_(network),
                     Doc.posted_at >= call.now() - min(hours, MAX_HOURS) * 3600,
                     visible_to(Doc, viewer), safesurf_clause(viewer, None, InvalidArgument))
              .alias("ranked"))
    docs = list(owned_docs()
                .switch(Doc).join(ranked, on=(ranked.c.doc_id == Doc.id))
                .where(ranked.c.rank <= per_member, User.status == "open")
                .order_by(Doc.posted_at.desc(), Doc.id.desc())
                .limit(min(count, MAX_RECENT_COUNT)))
    extras = parse_extra(extra, RECENT_EXTRAS) | {"owner"}  # the owner is in every item
    items = doc_trees(docs, call, extras, parse_thumbsize(thumbsize))
    return {"docs": {"count": len(items), "show": per_member, "doc": items}}
