"""Groups as the group methods, explore, doc.getContainers and the group pages use them: who may
see a group, membership (joining, asking, inviting, deciding, leaving), the pool (adding docs,
pending ones a moderator decides on, removing), and the trees every group element carries.

A group that is not public is seen only by its members and the members it invited; any other
caller is told it does not exist. Numbers (members, docs) are counted from the rows in grouped
queries, one per page (api/models/groups.py says why). Every change is one conditional statement
whose row count says whether it happened, under the unique (group, user) and (group, doc)
indexes: two clients acting at once leave one row and one answer saying "done"
(docs/protocol-choices.md, "Groups (issue 14)").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from peewee import Case, Expression, fn

from api.content.access import visible_to
from api.media.names import DEFAULT_ICON_PATH
from api.models.docs import Doc
from api.models.groups import Group, GroupDoc, GroupMember
from keys.db import as_tuples, locked
from keys.models import User

MODERATORS = ("admin", "moderator")
LANGUAGES = {"en": "English", "fr": "Français", "de": "Deutsch", "es": "Español",
             "it": "Italiano", "nl": "Nederlands", "pt": "Português", "pl": "Polski",
             "sv": "Svenska", "ja": "日本語", "zh": "中文", "other": "Another language"}
TITLE_MAX = Group.title.max_length  # characters
DESCRIPTION_MAX = 4000  # characters of a group's description (the page and any write bound it)


class GroupRefused(Exception):
    """A membership or pool change that cannot be done; the message is shown as is."""


def seen_by(user: User | None) -> Expression:
    """A WHERE clause for the groups ``user`` may see: public ones, and their own (member or
    invited)."""
    if user is None:
        return Group.is_public == True  # noqa: E712 (peewee expression)
    mine = GroupMember.select(GroupMember.group).where(
        GroupMember.user == user.id, GroupMember.state.in_(("member", "invited")))
    return (Group.is_public == True) | Group.id.in_(mine)  # noqa: E712


def find_group(group_id: int, user: User | None, *, locking: bool = False) -> Group | None:
    """The group if ``user`` may see it, else None (existence is never revealed).

    ``locking`` (a write: a join, an invitation, a doc added, a decision) locks its row until the
    transaction ends (PostgreSQL), so a delete of the group waits for the write, or the write for
    the delete and then finds no group: never a foreign-key error on a group deleted meanwhile.
    """
    query = Group.select().where(Group.id == group_id, seen_by(user))
    return (locked(query, Group) if locking else query).first()


def membership(group: Group, user: User | None) -> GroupMember | None:
    """``user``'s row in ``group`` (member, requested or invited), or None."""
    if user is None:
        return None
    return GroupMember.get_or_none(GroupMember.group == group.id, GroupMember.user == user.id)


def is_member(row: GroupMember | None) -> bool:
    """Whether a membership row is a full member's."""
    return row is not None and row.state == "member"


def is_moderator(row: GroupMember | None) -> bool:
    """Whether a membership row lets its member decide requests and pending docs."""
    return is_member(row) and row is not None and row.role in MODERATORS


def is_admin(row: GroupMember | None) -> bool:
    """Whether a membership row lets its member invite, appoint moderators and delete the
    group."""
    return is_member(row) and row is not None and row.role == "admin"


# -- numbers and trees --------------------------------------------------------------------------

@dataclass(frozen=True)
class Mine:
    """The caller's part in one group: their row and how many of their docs are in its pool or
    waiting."""

    row: GroupMember | None
    docs: int = 0
    pending: int = 0


def group_numbers(group_ids: Sequence[int], viewer: User | None) -> dict[int, dict[str, int]]:
    """``{"members": n, "docs": n, "last_doc_at": t}`` per group (two grouped queries): the docs
    of the pool ``viewer`` may see and when the latest of them entered it, so neither number
    tells of a doc hidden from them."""
    if not group_ids:
        return {}
    members = dict(as_tuples(GroupMember
                             .select(GroupMember.group, fn.COUNT(GroupMember.id))
                             .where(GroupMember.group.in_(list(group_ids)),
                                    GroupMember.state == "member")
                             .group_by(GroupMember.group).tuples()))
    docs = {group_id: (int(n), int(last or 0)) for group_id, n, last in as_tuples(
        GroupDoc.select(GroupDoc.group, fn.COUNT(GroupDoc.id), fn.MAX(GroupDoc.added_at))
        .join(Doc, on=(GroupDoc.doc == Doc.id))
        .where(GroupDoc.group.in_(list(group_ids)), GroupDoc.pending == False,  # noqa: E712
               visible_to(Doc, viewer))
        .group_by(GroupDoc.group).tuples())}
    return {i: {"members": int(members.get(i, 0)), "docs": docs.get(i, (0, 0))[0],
                "last_doc_at": docs.get(i, (0, 0))[1]} for i in group_ids}


def mine_in(group_ids: Sequence[int], user: User | None) -> dict[int, Mine]:
    """The caller's part in each group (two queries; none without a caller)."""
    if user is None or not group_ids:
        return {}
    rows = {row.group_id: row for row in GroupMember.select().where(
        GroupMember.user == user.id, GroupMember.group.in_(list(group_ids)))}
    counts: dict[tuple[int, bool], int] = {
        (group_id, bool(pending)): int(n) for group_id, pending, n in as_tuples(
            GroupDoc.select(GroupDoc.group, GroupDoc.pending, fn.COUNT(GroupDoc.id))
            .where(GroupDoc.added_by == user.id, GroupDoc.group.in_(list(group_ids)))
            .group_by(GroupDoc.group, GroupDoc.pending).tuples())}
    return {i: Mine(rows.get(i), counts.get((i, False), 0), counts.get((i, True), 0))
            for i in group_ids}


def group_link(base_url: str, group: Group) -> str:
    """The group's page."""
    return f"{base_url}/group/{group.id}"


def group_icon(base_url: str) -> str:
    """A group's icon: groups have no icon of their own here, so the default one."""
    return base_url + DEFAULT_ICON_PATH


def group_card(base_url: str, group: Group, numbers: dict[str, int]) -> dict[str, Any]:
    """``<group group_id title link icon><count/><dates/><visibility/></group>``: a group in
    group.search and explore.groups.getRandom (group.getList adds ``you``)."""
    return {"group_id": group.id, "title": group.title, "link": group_link(base_url, group),
            "icon": group_icon(base_url),
            "count": {"members": numbers.get("members", 0), "docs": numbers.get("docs", 0),
                      "topics": 0},
            "dates": {"created_at": group.created_at,
                      "last_doc_at": numbers.get("last_doc_at", 0),
                      "last_topic_at": 0},
            "visibility": {"ispublic": group.is_public, "docs": group.is_public,
                           "topics": group.is_public}}


def you_tree(mine: Mine | None) -> dict[str, Any]:
    """``<you isadmin ismoderator ismember docs joined_at visited_at isinvited isrequested
    pending/>``: the caller's part in a group."""
    row = mine.row if mine else None
    return {"isadmin": is_admin(row),
            "ismoderator": is_moderator(row) and row is not None and row.role == "moderator",
            "ismember": is_member(row), "docs": mine.docs if mine else 0,
            "joined_at": row.joined_at if row else 0, "visited_at": row.visited_at if row else 0,
            "isinvited": row is not None and row.state == "invited",
            "isrequested": row is not None and row.state == "requested",
            "pending": mine.pending if mine else 0}


def group_cards(base_url: str, groups: Sequence[Group],
                viewer: User | None) -> list[dict[str, Any]]:
    """``group_card`` for each group, with its numbers as ``viewer`` sees them (two queries)."""
    numbers = group_numbers([g.id for g in groups], viewer)
    return [group_card(base_url, g, numbers[g.id]) for g in groups]


# -- creating and membership --------------------------------------------------------------------

def create_group(owner: User, *, title: str, description: str, lang: str, access: str,
                 is_public: bool, now: int) -> Group:
    """A new group with its creator as its admin (the caller runs this in a transaction)."""
    title = " ".join(title.split())
    if not title or len(title) > TITLE_MAX:
        raise GroupRefused(f"Give the group a title of 1 to {TITLE_MAX} characters.")
    if len(description) > DESCRIPTION_MAX:
        raise GroupRefused(f"Keep the description under {DESCRIPTION_MAX} characters.")
    if lang not in LANGUAGES:
        raise GroupRefused("Choose the group's language from the list.")
    if access not in ("open", "moderated", "invitation"):
        raise GroupRefused("Choose who may join: anyone, on request, or by invitation.")
    group = Group.create(owner=owner, title=title, description=description.strip(), lang=lang,
                         access=access, is_public=is_public, created_at=now)
    GroupMember.create(group=group, user=owner, role="admin", state="member", joined_at=now,
                       asked_at=now)
    return group


def join(group: Group, user: User, now: int) -> str:
    """``user`` joins (an open group, or one inviting them) or asks to join (a moderated one);
    the state they end in. A repeated call changes nothing."""
    if _promote(group, user.id, "invited", now):
        return "member"
    if group.access == "invitation":
        row = membership(group, user)
        if row is None:
            raise GroupRefused("This group takes members by invitation only.")
        return row.state
    state = "member" if group.access == "open" else "requested"
    GroupMember.insert(group=group.id, user=user.id, role="member", state=state,
                       joined_at=now if state == "member" else 0, asked_at=now
                       ).on_conflict_ignore().execute()
    row = membership(group, user)
    return row.state if row else state


def _promote(group: Group, user_id: int, from_state: str, now: int) -> bool:
    """``from_state`` (invited, requested) becomes member; whether this call did it."""
    return bool(GroupMember.update(state="member", joined_at=now)
                .where(GroupMember.group == group.id, GroupMember.user == user_id,
                       GroupMember.state == from_state).execute())


def decide_request(group: Group, user_id: int, *, accept: bool, now: int) -> bool:
    """A moderator accepts or refuses one request to join; whether there was one."""
    if accept:
        return _promote(group, user_id, "requested", now)
    return bool(GroupMember.delete().where(GroupMember.group == group.id,
                                           GroupMember.user == user_id,
                                           GroupMember.state == "requested").execute())


def invite(group: Group, username: str, now: int) -> User:
    """An admin invites a member by username (a member already in, asking or invited stays as
    they are); a request waiting is accepted."""
    user = User.get_or_none(User.username == username.strip()[:User.username.max_length],
                            User.status == "open")
    if user is None:
        raise GroupRefused("No open account has this user name.")
    if _promote(group, user.id, "requested", now):
        return user
    GroupMember.insert(group=group.id, user=user.id, role="member", state="invited",
                       asked_at=now).on_conflict_ignore().execute()
    return user


def leave(group: Group, user: User) -> bool:
    """``user`` leaves (or declines an invitation, or withdraws a request); the creator stays.
    Their docs stay in the pool, as on the original. Whether a row went."""
    if user.id == group.owner_id:
        raise GroupRefused("The group's creator cannot leave it.")
    return bool(GroupMember.delete().where(GroupMember.group == group.id,
                                           GroupMember.user == user.id).execute())


def set_role(group: Group, user_id: int, role: str) -> bool:
    """An admin makes a member a moderator or a moderator a member again; whether it changed.
    Admins (the creator among them) keep their role, and requests or invitations have none."""
    if role not in ("moderator", "member"):
        raise GroupRefused("Choose moderator or member.")
    return bool(GroupMember.update(role=role).where(
        GroupMember.group == group.id, GroupMember.user == user_id,
        GroupMember.state == "member", GroupMember.role.in_(("moderator", "member")),
        GroupMember.role != role).execute())


def delete_group(group: Group) -> bool:
    """The group goes, and with it (``ON DELETE CASCADE``) its members, requests, invitations
    and pool rows; the documents stay their owners'. Whether this call deleted it."""
    return bool(Group.delete().where(Group.id == group.id).execute())


def members_by_role(group: Group) -> list[GroupMember]:
    """The members with their accounts, admins and moderators first (one query, bounded)."""
    return list(GroupMember.select(GroupMember, User)
                .join(User, on=(GroupMember.user == User.id))
                .where(GroupMember.group == group.id, GroupMember.state == "member")
                .order_by(Case(GroupMember.role, [("admin", 0), ("moderator", 1)], 2),
                          User.username).limit(500))


def waiting_members(group: Group) -> list[GroupMember]:
    """Requests to join, oldest first, with their members (one query)."""
    return list(GroupMember.select(GroupMember, User)
                .join(User, on=(GroupMember.user == User.id))
                .where(GroupMember.group == group.id, GroupMember.state == "requested")
                .order_by(GroupMember.asked_at, GroupMember.id).limit(200))


# -- the pool -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Added:
    """What ``add_docs`` did with one requested doc."""

    doc_id: int
    added: bool  # a row was made by this call
    pending: bool  # the doc waits for a moderator (made now or before)
    error: bool  # not the caller's doc


def add_docs(group: Group, row: GroupMember | None, user: User, doc_ids: Sequence[int],
             now: int) -> list[Added]:
    """The member's own docs into the pool, pending in a moderated group unless a moderator
    adds them; a doc already there keeps its place. GroupRefused for a non-member."""
    if not is_member(row):
        raise GroupRefused("Only the group's members add documents to it.")
    own = _lock_docs(Doc.select(Doc.id, Doc.is_public).where(Doc.id.in_(list(doc_ids)),
                                                             Doc.owner == user.id))
    pending = group.access == "moderated" and not is_moderator(row)
    made = set()
    for doc_id in sorted(own):
        # One statement per doc, so its row count says whether this call made the row; in id
        # order, as the locks were taken.
        if GroupDoc.insert(group=group.id, doc=doc_id, added_by=user.id, pending=pending,
                           added_at=now).on_conflict_ignore().as_rowcount().execute():
            made.add(doc_id)
    if not pending and any(own[d] for d in made):
        touch(group, now)
    waiting = {d for (d,) in as_tuples(GroupDoc.select(GroupDoc.doc).where(
        GroupDoc.group == group.id, GroupDoc.doc.in_(list(own)),
        GroupDoc.pending == True).tuples())} if own else set()  # noqa: E712
    return [Added(d, d in made, d in waiting, d not in own) for d in doc_ids]


def _lock_docs(query: Any) -> dict[int, bool]:
    """``{doc id: is public}`` for the docs ``query`` (selecting Doc.id, Doc.is_public) finds,
    their rows locked in id order until the write ends (PostgreSQL). A doc.delete then waits for
    this write or this write for it (the doc is then not found, never a foreign-key error), and
    two writes naming the same docs in any order go one after the other, never deadlocked."""
    return {d: bool(public) for d, public in as_tuples(
        locked(query.order_by(Doc.id), Doc).tuples())}


def touch(group: Group, now: int) -> None:
    """A public doc entered the pool: the group's ``last_doc_at``, which orders groups by
    activity (search, explore), so a private doc never moves it."""
    Group.update(last_doc_at=now).where(Group.id == group.id).execute()


def decide_doc(group: Group, doc_id: int, *, accept: bool, now: int) -> bool:
    """A moderator accepts a pending doc into the pool or refuses it; whether it was pending."""
    where = (GroupDoc.group == group.id, GroupDoc.doc == doc_id,
             GroupDoc.pending == True)  # noqa: E712
    if not accept:
        return bool(GroupDoc.delete().where(*where).execute())
    done = bool(GroupDoc.update(pending=False, added_at=now).where(*where).execute())
    if done and Doc.select().where(Doc.id == doc_id, visible_to(Doc, None)).exists():
        touch(group, now)
    return done


def remove_docs(group: Group, row: GroupMember | None, user: User,
                doc_ids: Sequence[int]) -> set[int]:
    """Docs out of the pool (or out of the queue): a moderator removes any, a member the docs
    they added or own. The ids removed."""
    if not doc_ids:
        return set()
    query = Doc.select(Doc.id, Doc.is_public).join(GroupDoc, on=(GroupDoc.doc == Doc.id)).where(
        GroupDoc.group == group.id, GroupDoc.doc.in_(list(doc_ids)))
    if not is_moderator(row):
        query = query.where((GroupDoc.added_by == user.id) | (Doc.owner == user.id))
    allowed = _lock_docs(query)
    # One statement per doc, in id order as locked: its row count says whether this call
    # removed it.
    return {d for d in sorted(allowed) if GroupDoc.delete().where(
        GroupDoc.group == group.id, GroupDoc.doc == d).execute()}


@dataclass(frozen=True)
class Pending:
    """A doc waiting for a moderator, and whether that moderator may see it (else the page
    shows only its id: no title, no thumbnail)."""

    entry: GroupDoc
    shown: bool


def pending_docs(group: Group, moderator: User) -> list[Pending]:
    """Docs waiting for a moderator, oldest first, with their docs (two queries)."""
    entries = list(GroupDoc.select(GroupDoc, Doc)
                   .join(Doc, on=(GroupDoc.doc == Doc.id))
                   .where(GroupDoc.group == group.id, GroupDoc.pending == True)  # noqa: E712
                   .order_by(GroupDoc.added_at, GroupDoc.id).limit(200))
    shown = {d for (d,) in as_tuples(Doc.select(Doc.id).where(
        Doc.id.in_([e.doc_id for e in entries]), visible_to(Doc, moderator)).tuples())
             } if entries else set()
    return [Pending(entry, entry.doc_id in shown) for entry in entries]


def containers_tree(base_url: str, doc: Doc, user: User | None,
                    viewer: User | None) -> dict[str, Any]:
    """doc.getContainers' ``<groups total added pending invited><group …/></groups>``: the
    groups holding ``doc`` that ``user`` may see, each with the docs ``viewer`` (``user`` if
    their token may read docs) may see in it; a submission still waiting shows only to the
    doc's owner. Groups never invite documents here, so ``invited`` is 0 (three queries)."""
    owner_sees = user is not None and user.id == doc.owner_id
    where = [GroupDoc.doc == doc.id, seen_by(user)]
    if not owner_sees:
        where.append(GroupDoc.pending == False)  # noqa: E712
    rows = list(GroupDoc.select(GroupDoc, Group)
                .join(Group, on=(GroupDoc.group == Group.id))
                .where(*where)
                .order_by(fn.LOWER(Group.title), Group.id))
    numbers = group_numbers([row.group.id for row in rows], viewer)
    items = [{"group_id": row.group.id, "title": row.group.title,
              "docs": numbers[row.group.id]["docs"], "pending": row.pending, "invited": False,
              "cover": group_icon(base_url), "link": group_link(base_url, row.group)}
             for row in rows]
    waiting = sum(row.pending for row in rows)
    return {"total": len(items), "added": len(items) - waiting, "pending": waiting,
            "invited": 0, "group": items}
