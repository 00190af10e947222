"""Group pages (issue 14): ``/groups`` (the member's groups and a search), ``/groups/new`` (create
one), ``/group/<id>`` (a group, its pool, and the buttons to join, ask to join, accept an
invitation, leave, invite, add a document) and ``/group/<id>/moderate`` (requests and pending
documents, for moderators and admins).

Every form is CSRF-protected and needs a login; a group the visitor may not see is a 404, as
the API's code 1. The rules live in api/content/groups.py, shared with the group methods.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import falcon

from api.content.access import safesurf_clause, visible_to
from api.content.groups import (
    DESCRIPTION_MAX,
    LANGUAGES,
    TITLE_MAX,
    GroupRefused,
    add_docs,
    create_group,
    decide_doc,
    decide_request,
    delete_group,
    find_group,
    group_numbers,
    invite,
    is_admin,
    is_moderator,
    join,
    leave,
    members_by_role,
    membership,
    pending_docs,
    remove_docs,
    seen_by,
    set_role,
    waiting_members,
)
from api.core.errors import ApiError
from api.core.ids import as_id
from api.models.docs import Doc
from api.models.groups import Group, GroupDoc, GroupMember
from api.web.pages import SESSION_COOKIE, BadRequest, Page, Pages, read_form
from keys.db import db
from keys.models import User

POOL_SHOWN = 100  # documents a group page lists (the newest in the pool)
OWN_DOCS_OFFERED = 100  # of the member's latest documents in the page's "add" form
SEARCH_SHOWN = 50
ACCESS_WORDS = {"open": "anyone may join", "moderated": "members join on request",
                "invitation": "by invitation only"}


def not_found() -> BadRequest:
    """A group the visitor may not see looks like no group at all."""
    return BadRequest("This group does not exist.", falcon.HTTP_404)


class GroupPage(Page):
    """A page under ``/group/<group_id>``: the group if the visitor may see it, else 404."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, group_id: str = "") -> None:
        self._guard(partial(self.get_group, group_id=group_id), req, resp)

    def on_post(self, req: falcon.Request, resp: falcon.Response, group_id: str = "") -> None:
        self._guard(partial(self.post_group, group_id=group_id), req, resp)

    def find(self, user: User | None, group_id: str, *, locking: bool = False) -> Group:
        """The group the path names, if ``user`` may see it; ``locking`` inside a form's
        transaction, so a group deleted meanwhile is a 404, never a foreign-key error."""
        row_id = as_id(group_id)
        found = find_group(row_id, user, locking=locking) if row_id is not None else None
        if found is None:
            raise not_found()
        return found

    def csrf_token(self, req: falcon.Request) -> str:
        return self.pages.accounts.csrf_token(req.cookies.get(SESSION_COOKIE, ""))

    def get_group(self, req: falcon.Request, resp: falcon.Response, group_id: str) -> None:
        raise BadRequest("This page does not exist.", falcon.HTTP_405)

    post_group = get_group


class GroupList(Page):
    """``/groups``: the member's groups (with invitations and requests) and a search."""

    def get(self, req: falcon.Request, resp: falcon.Response) -> None:
        user = self.pages.user(req)
        text = (req.get_param("q") or "")[:TITLE_MAX]
        mine: list[Any] = []
        if user is not None:
            mine = list(GroupMember.select(GroupMember, Group)
                        .join(Group, on=(GroupMember.group == Group.id))
                        .where(GroupMember.user == user.id)
                        .order_by(Group.title, Group.id).limit(500))
        query = Group.select().where(seen_by(user))
        for word in text.split()[:10]:
            query = query.where(Group.title.contains(word) | Group.description.contains(word))
        found = list(query.order_by(Group.last_doc_at.desc(), Group.id.desc())
                     .limit(SEARCH_SHOWN))
        self.pages.render(resp, "group_list.html", title="Groups", user=user, mine=mine,
                          found=found, q=text, access_words=ACCESS_WORDS)


class NewGroup(Page):
    """``/groups/new``: the form that creates a group; its creator becomes its admin."""

    def get(self, req: falcon.Request, resp: falcon.Response) -> None:
        user = self.pages.user(req)
        if user is None:
            return self.pages.login_redirect(req, resp)
        self.show(req, resp, user)

    def show(self, req: falcon.Request, resp: falcon.Response, user: User, *,
             error: str = "", form: dict[str, str] | None = None) -> None:
        """The form (400 when it comes back with an error)."""
        self.pages.render(resp, "group_new.html", status=falcon.HTTP_400 if error else
                          falcon.HTTP_200, title="Create a group", user=user, error=error,
                          form=form or {"lang": "en", "access": "open", "is_public": "1"},
                          languages=LANGUAGES, access_words=ACCESS_WORDS, title_max=TITLE_MAX,
                          description_max=DESCRIPTION_MAX,
                          csrf_token=self.pages.accounts.csrf_token(req.cookies[SESSION_COOKIE]))

    def post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = read_form(req)
        user = self.pages.user(req)
        if user is None:
            return self.pages.redirect(resp, "/login")
        self.pages.check_csrf(req, form)
        try:
            with db.atomic():
                group = create_group(user, title=form.get("title", ""),
                                     description=form.get("description", ""),
                                     lang=form.get("lang", ""), access=form.get("access", ""),
                                     is_public=bool(form.get("is_public")),
                                     now=self.pages.now())
        except GroupRefused as refused:
            return self.show(req, resp, user, error=str(refused), form=form)
        self.pages.redirect(resp, f"/group/{group.id}")


class GroupView(GroupPage):
    """``/group/<id>``: the group and its pool; POST ``action``: join, leave, invite, add,
    remove, delete (an admin, with the confirmation box ticked)."""

    def get_group(self, req: falcon.Request, resp: falcon.Response, group_id: str) -> None:
        user = self.pages.user(req)
        self.show(req, resp, user, self.find(user, group_id))

    def show(self, req: falcon.Request, resp: falcon.Response, user: User | None, group: Group,
             *, message: str = "", error: str = "") -> None:
        """The group's page, with a message after an action."""
        row = membership(group, user)
        pool = list(Doc.select(Doc, User)
                    .join(GroupDoc, on=(GroupDoc.doc == Doc.id))
                    .switch(Doc).join(User, on=(Doc.owner == User.id))
                    .where(GroupDoc.group == group.id, GroupDoc.pending == False,  # noqa: E712
                           visible_to(Doc, user),
                           safesurf_clause(user, None, ApiError))  # the default: never raises
                    .order_by(GroupDoc.added_at.desc(), GroupDoc.id.desc())
                    .limit(POOL_SHOWN))
        own_docs = list(Doc.select(Doc.id, Doc.title).where(Doc.owner == user.id)
                        .order_by(Doc.posted_at.desc(), Doc.id.desc())
                        .limit(OWN_DOCS_OFFERED)) if user is not None and row else []
        self.pages.render(resp, "group_page.html", status=falcon.HTTP_400 if error else
                          falcon.HTTP_200, title=group.title, user=user, group=group, row=row,
                          numbers=group_numbers([group.id], user)[group.id], pool=pool,
                          own_docs=own_docs, moderator=is_moderator(row),
                          creator=User.get_by_id(group.owner_id), message=message, error=error,
                          language=LANGUAGES.get(group.lang, group.lang),
                          access_words=ACCESS_WORDS,
                          csrf_token=self.csrf_token(req) if user is not None else "")

    def post_group(self, req: falcon.Request, resp: falcon.Response, group_id: str) -> None:
        posted = self.pages.posted(req, resp)
        if posted is None:
            return
        user, form = posted
        action = form.get("action", "")
        now = self.pages.now()
        try:
            with db.atomic():
                group = self.find(user, group_id, locking=True)
                if action == "delete":
                    return self.delete(resp, user, group, form)
                message = self.act(action, user, group, form, now)
        except GroupRefused as refused:
            return self.show(req, resp, user, group, error=str(refused))
        self.show(req, resp, user, group, message=message)

    def delete(self, resp: falcon.Response, user: User, group: Group,
               form: dict[str, str]) -> None:
        """An admin deletes the group once they ticked the confirmation; back to /groups."""
        if not is_admin(membership(group, user)):
            raise GroupRefused("Only the group's admins delete it.")
        if form.get("confirm") != "yes":
            raise GroupRefused("Tick the box to confirm that the group is to be deleted.")
        delete_group(group)
        self.pages.redirect(resp, "/groups")

    def act(self, action: str, user: User, group: Group, form: dict[str, str], now: int) -> str:
        """Do one of the page's actions; the sentence saying what happened."""
        if action == "join":
            state = join(group, user, now)
            return {"member": "You are a member of this group.",
                    "requested": "You asked to join; a moderator will decide.",
                    }.get(state, "You are invited: accept the invitation to join.")
        if action == "leave":
            leave(group, user)
            return "You left the group."
        row = membership(group, user)
        if action == "invite":
            if not is_admin(row):
                raise GroupRefused("Only the group's admins invite members.")
            invited = invite(group, form.get("username", ""), now)
            return f"{invited.username} is invited."
        if action in ("add", "remove"):
            doc_id = as_id(form.get("doc_id", ""))
            if doc_id is None:
                raise GroupRefused("Choose one of your documents.")
            if action == "remove":
                removed = remove_docs(group, row, user, [doc_id])
                return "The document left the pool." if removed else "Nothing was removed."
            (result,) = add_docs(group, row, user, [doc_id], now)
            if result.error:
                raise GroupRefused("Choose one of your documents.")
            return ("The document waits for a moderator." if result.pending
                    else "The document is in the pool.")
        raise BadRequest("Choose one of the page's buttons.")


class Moderate(GroupPage):
    """``/group/<id>/moderate``: requests to join and pending documents, each with Accept and
    Refuse, and the members, whom an admin makes moderators or members again; moderators and
    admins only (404 for anyone else)."""

    def moderator(self, user: User | None, group: Group) -> None:
        if not is_moderator(membership(group, user)):
            raise not_found()

    def get_group(self, req: falcon.Request, resp: falcon.Response, group_id: str) -> None:
        user = self.pages.user(req)
        if user is None:
            return self.pages.login_redirect(req, resp)
        group = self.find(user, group_id)
        self.moderator(user, group)
        self.show(req, resp, user, group)

    def show(self, req: falcon.Request, resp: falcon.Response, user: User, group: Group, *,
             message: str = "") -> None:
        """The requests and the pending documents."""
        self.pages.render(resp, "group_moderate.html", title=f"Moderate {group.title}",
                          user=user, group=group, requests=waiting_members(group),
                          pending=pending_docs(group, user), members=members_by_role(group),
                          admin=is_admin(membership(group, user)), message=message,
                          csrf_token=self.csrf_token(req))

    def post_group(self, req: falcon.Request, resp: falcon.Response, group_id: str) -> None:
        posted = self.pages.posted(req, resp)
        if posted is None:
            return
        user, form = posted
        with db.atomic():
            group = self.find(user, group_id, locking=True)
            self.moderator(user, group)
            decide = self.appoint if form.get("what") == "role" else self.decide
            message = decide(user, group, form)
        self.show(req, resp, user, group, message=message)

    def decide(self, user: User, group: Group, form: dict[str, str]) -> str:
        """A moderator accepts or refuses a request to join or a pending document."""
        decision = form.get("decision", "")
        target = as_id(form.get("id", ""))
        if decision not in ("accept", "refuse") or target is None:
            raise BadRequest("Choose Accept or Refuse.")
        accept = decision == "accept"
        decided = decide_request if form.get("what") == "member" else decide_doc
        if not decided(group, target, accept=accept, now=self.pages.now()):
            return "Already decided."
        return "Accepted." if accept else "Refused."

    def appoint(self, user: User, group: Group, form: dict[str, str]) -> str:
        """An admin makes a member a moderator, or a moderator a member again."""
        target = as_id(form.get("id", ""))
        if not is_admin(membership(group, user)) or target is None:
            raise BadRequest("Only the group's admins appoint moderators.", falcon.HTTP_403)
        try:
            done = set_role(group, target, form.get("role", ""))
        except GroupRefused as refused:
            raise BadRequest(str(refused)) from None
        return "Done." if done else "Nothing changed."


def add_routes(app: falcon.App, pages: Pages) -> None:
    """Mount the group pages."""
    app.add_route("/groups", GroupList(pages))
    app.add_route("/groups/new", NewGroup(pages))
    app.add_route("/group/{group_id}", GroupView(pages))
    app.add_route("/group/{group_id}/moderate", Moderate(pages))
