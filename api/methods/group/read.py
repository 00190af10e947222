"""``group.get``, ``group.getList``, ``group.search``: a group's details, a member's groups and
finding groups by text and language (spec §9, method-shapes.md).

A group that is not public is seen only by its members and the members it invited
(api/content/groups.py); ``you`` says what the caller (any token) is in each group. The rules
are written down in docs/protocol-choices.md, "Groups (issue 14)".
"""

from __future__ import annotations

from typing import Annotated

from peewee import Case, fn

from api.content.access import find_open_member, viewer_of
from api.content.groups import (
    LANGUAGES,
    group_card,
    group_cards,
    group_numbers,
    is_member,
    mine_in,
    seen_by,
    you_tree,
)
from api.core.context import Call
from api.core.paging import NUMBER_OF, Paging
from api.core.registry import MethodGroup
from api.formats.tree import Text
from api.methods.common import InvalidArgument, UserNotFound
from api.methods.group.shared import GroupId, GroupNotFound, Lang, visible_group
from api.models.groups import Group, GroupMember

group = MethodGroup()

GROUPS_PAGE = Paging("Groups", default=100, maximum=100)  # spec §10.1, group.getList
SEARCH_PAGE = Paging("groups", default=20, maximum=100, wording=NUMBER_OF)  # group.search
SORTS = ("relevance", "created-desc", "created-asc")  # spec §10.4
MAX_TEXT, MAX_WORDS = 200, 10  # group.search's text: characters, words (each must match)
ICON_SIZE = "75x"  # group.getList's ``thumbsize``: the icons' (the method takes none)


@group.method("group.get", title="Get details about a group.", service="doc",
              missing=GroupNotFound, invalid=GroupNotFound,
              response='<group id group_id title lang link icon><description/><quota/><can/>'
                       '<visibility/><dates/><count/><you/></group>')
def get(call: Call, group_id: GroupId, lang: Lang = "") -> dict:
    """Return a group's details: its description, what the caller may do in it, its numbers,
    and (with a token) the caller's part in it.

    A member's call records their visit (``you visited_at`` shows the one before). ``quota``:
    there is no limit on how many documents a member adds (``max`` 0); ``moderated`` says
    whether a member's documents wait for a moderator.
    """
    found = visible_group(call, group_id)
    mine = mine_in([found.id], call.user).get(found.id)
    row = mine.row if mine else None
    if row is not None and is_member(row):
        GroupMember.update(visited_at=call.now()).where(GroupMember.id == row.id).execute()
    card = group_card(call.base_url, found,
                      group_numbers([found.id], viewer_of(call))[found.id])
    return {"group": {"id": found.id, "group_id": found.id, "title": found.title,
                      "lang": found.lang, "link": card["link"], "icon": card["icon"],
                      "description": Text(found.description),
                      "quota": {"moderated": found.access == "moderated", "max": 0,
                                "period": "", "left": 0},
                      "can": {"add_doc": is_member(row), "add_topic": False,
                              "accept_photo": True, "accept_audio": True,
                              "accept_video": True, "accept_other": True},
                      "visibility": card["visibility"], "dates": card["dates"],
                      "count": card["count"],
                      "you": you_tree(mine) if call.user is not None else None}}


@group.method("group.getList", title="Return the groups list for a given user",
              missing=UserNotFound, invalid=UserNotFound,
              response='<groups total page pages per_page count thumbsize><group group_id '
                       'link icon title><visibility/><dates/><count/><you/></group></groups>')
def get_list(call: Call,
             user_id: Annotated[str, "The member (id or username); defaults to the "
                                     "authenticated user (the token's)."] = "",
             lang: Lang = "",
             per_page: Annotated[int | None, GROUPS_PAGE.per_page_help] = None,
             page: Annotated[int | None, GROUPS_PAGE.page_help] = None) -> dict:
    """Return the groups a member belongs to, by title.

    The caller's own list (no user_id, or their own) also holds the groups inviting them and
    those they asked to join, each flagged in ``you`` (``isinvited``, ``isrequested``; ``pending``
    counts their documents waiting for a moderator). Another member's list holds only the
    groups the caller may see. An unknown or closed member, or no member at all, is code 1.
    """
    caller = call.user
    member = find_open_member(user_id) if user_id.strip() else caller
    if member is None:
        raise UserNotFound(user_id or "missing parameter user_id")
    own = caller is not None and caller.id == member.id
    states = ("member", "invited", "requested") if own else ("member",)
    slice_ = GROUPS_PAGE.page(page, per_page)
    query = (Group.select(Group)
             .join(GroupMember, on=(GroupMember.group == Group.id))
             .where(GroupMember.user == member.id, GroupMember.state.in_(states),
                    seen_by(caller)))
    groups = list(slice_.apply(query.order_by(fn.LOWER(Group.title), Group.id)))
    cards = group_cards(call.base_url, groups, viewer_of(call))
    mine = mine_in([g.id for g in groups], caller)
    items = [{"group_id": card["group_id"], "link": card["link"], "icon": card["icon"],
              "title": card["title"], "visibility": card["visibility"], "dates": card["dates"],
              "count": card["count"],
              "you": you_tree(mine.get(g.id)) if caller is not None else None}
             for g, card in zip(groups, cards, strict=True)]
    return {"groups": {**slice_.attrs(query.order_by().count(), len(items)),
                       "thumbsize": ICON_SIZE, "group": items}}


@group.method("group.search", title="Search for a group.", missing=InvalidArgument,
              invalid=InvalidArgument,
              response='<groups page total pages per_page count><group group_id title link '
                       'icon><count/><dates/><visibility/></group></groups>')
def search(call: Call,
           text: Annotated[str, f"Words each found in the title or the description (at most "
                                f"{MAX_WORDS} words, {MAX_TEXT} characters)."] = "",
           lang: Annotated[str, "Only groups in this language: "
                                f"{', '.join(LANGUAGES)}."] = "",
           sort: Annotated[str, f"{', '.join(SORTS)} (default relevance)."] = "relevance",
           per_page: Annotated[int | None, SEARCH_PAGE.per_page_help] = None,
           page: Annotated[int | None, SEARCH_PAGE.page_help] = None) -> dict:
    """Return the groups whose title or description holds every word of ``text`` (any case;
    ``%`` and ``_`` match themselves), in a language if asked.

    relevance puts the groups whose title holds the whole text first, then the most recently
    active; created-desc and created-asc sort by creation. Only groups the caller may see. A
    text over the bounds, an unknown language or sort is code 2.
    """
    words = text.split()
    if len(text) > MAX_TEXT or len(words) > MAX_WORDS:
        raise InvalidArgument(f"text longer than {MAX_TEXT} characters or {MAX_WORDS} words")
    if sort not in SORTS:
        raise InvalidArgument(f"sort={sort!r}")
    if lang and lang not in LANGUAGES:
        raise InvalidArgument(f"lang={lang!r}")
    slice_ = SEARCH_PAGE.page(page, per_page)
    where = [seen_by(call.user),
             *((Group.title.contains(word) | Group.description.contains(word))
               for word in words)]
    if lang:
        where.append(Group.lang == lang)
    order = {"created-desc": (Group.created_at.desc(), Group.id.desc()),
             "created-asc": (Group.created_at, Group.id),
             "relevance": (Case(None, [(Group.title.contains(" ".join(words)), 0)], 1),
                           Group.last_doc_at.desc(), Group.id.desc())}[sort]
    query = Group.select().where(*where)
    groups = list(slice_.apply(query.order_by(*order)))
    items = group_cards(call.base_url, groups, viewer_of(call))
    return {"groups": {**slice_.attrs(query.order_by().count(), len(items)),
                       "group": items}}
