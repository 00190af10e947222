"""The key console: a member's own API keys (``/apps/keys``) and the operators' list of every key
(``/admin/keys``).

Anyone logged in may register applications. A key's page (``/apps/keys/<api_key>``) shows its
settings and its audit list; its forms reveal the secret (a POST: never in a URL, answered
``Cache-Control: no-store`` like every page), rotate it with a grace period the owner chooses, turn
the key on or off, and change the name, description, callback, "always signed", the allowed
addresses (CIDR ranges), the key's rate limit (an owner may lower the server's default, not raise
it: operators do that with ``python -m keys ratelimit``), "require HMAC-SHA256" and "OAuth 1.0
clients". Every change goes through ``keys.store`` (which writes the audit line) and drops the key
from the in-process cache at once. Another member's key, and ``/admin/keys`` for a
non-administrator, are 404: whether a key exists is never revealed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Any

import falcon
from peewee import Case, fn

from api.runtime import ratelimit
from api.web.pages import SESSION_COOKIE, BadRequest, Page, Pages, read_form
from keys import store
from keys.db import as_tuples
from keys.models import ApiKey, UsageCounter, User

KEYS_HOME = "/apps/keys"
ADMIN_HOME = "/admin/keys"
NOT_FOUND = "This page does not exist."
# The grace periods the rotation form offers, in seconds, with their words.
GRACE_CHOICES = ((0, "none: the old secret stops working at once"), (3600, "1 hour"),
                 (86400, "1 day"), (2 * 86400, "2 days"), (3 * 86400, "3 days"),
                 (7 * 86400, "7 days"))
_NETWORK_SEPARATORS = re.compile(r"[\s,]+")


def not_found() -> BadRequest:
    """The one answer for a key that is not the visitor's, or a page they may not see."""
    return BadRequest(NOT_FOUND, falcon.HTTP_404)


def split_allowed(text: str) -> list[str]:
    """The allowed-address field: ranges separated by commas, spaces or new lines."""
    return [part for part in _NETWORK_SEPARATORS.split(text) if part]


def calls_last_day(now: int) -> dict[str, tuple[int, int]]:
    """Per key, (calls, errors) over the current hour and the 23 before it (usage counters as
    flushed; an error is any call whose code is not 0)."""
    since = now // 3600 - 23
    errors = fn.SUM(Case(None, [(UsageCounter.code != 0, UsageCounter.calls)], 0))
    rows = as_tuples(UsageCounter
                     .select(UsageCounter.api_key, fn.SUM(UsageCounter.calls), errors)
                     .where(UsageCounter.hour >= since)
                     .group_by(UsageCounter.api_key)
                     .tuples())
    return {key: (int(calls or 0), int(failed or 0)) for key, calls, failed in rows}


def own_key(user: User, api_key: str) -> ApiKey:
    """``user``'s key ``api_key``, or 404 (another member's key looks exactly like none)."""
    row = ApiKey.get_or_none((ApiKey.key == api_key.strip().lower()) & (ApiKey.owner == user))
    if row is None:
        raise not_found()
    return row


class ConsolePage(Page):
    """A page for logged-in members."""

    def csrf_token(self, req: falcon.Request) -> str:
        """The forms' token, bound to the session."""
        return self.pages.accounts.csrf_token(req.cookies[SESSION_COOKIE])

    def member(self, req: falcon.Request, resp: falcon.Response) -> User | None:
        """The logged-in member; None after sending a visitor to the login page."""
        user = self.pages.user(req)
        if user is None:
            self.pages.login_redirect(req, resp)
        return user


class KeyList(ConsolePage):
    """``/apps/keys``: my keys, and the form to register an application."""

    def get(self, req: falcon.Request, resp: falcon.Response) -> None:
        user = self.member(req, resp)
        if user is not None:
            self.show(req, resp, user)

    def show(self, req: falcon.Request, resp: falcon.Response, user: User, *, error: str = "",
             form: dict[str, str] | None = None) -> None:
        """The list and the form (400 when the form comes back with an error)."""
        self.pages.render(resp, "keys_list.html", status=falcon.HTTP_400 if error else
                          falcon.HTTP_200, user=user, keys=store.list_keys(user), error=error,
                          form=form or {"auth_type": "desktop"}, csrf_token=self.csrf_token(req))

    def post(self, req: falcon.Request, resp: falcon.Response) -> None:
        posted = self.pages.posted(req, resp)
        if posted is None:
            return
        user, form = posted
        auth_type = form.get("auth_type", "desktop")
        try:
            row = store.create_key(user, form.get("name", ""),
                                   description=form.get("description", "").strip(),
                                   auth_type=auth_type,
                                   callback_url=(form.get("callback_url", "").strip()
                                                 if auth_type == "web" else ""),
                                   actor=user.username, now=self.pages.now())
        except store.KeyStoreError as error:
            message = str(error).replace("--callback URL", "a callback URL")
            return self.show(req, resp, user, error=message[:1].upper() + message[1:] + ".",
                             form=form)
        self.pages.ctx.keys.invalidate(row.key)  # a lookup before it existed cached a miss
        self.pages.redirect(resp, f"{KEYS_HOME}/{row.key}")


class OwnKeyPage(ConsolePage):
    """A page under ``/apps/keys/<api_key>``: GET shows it for the visitor's own key only (another
    member's key is a 404, as if there were none); a page without a form answers POST with its
    405 page."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, api_key: str = "") -> None:
        self._guard(partial(self._own, api_key=api_key), req, resp)

    def on_post(self, req: falcon.Request, resp: falcon.Response, api_key: str = "") -> None:
        self._guard(self.post, req, resp)

    def _own(self, req: falcon.Request, resp: falcon.Response, api_key: str) -> None:
        user = self.member(req, resp)
        if user is not None:
            self.view(req, resp, user, own_key(user, api_key))

    def view(self, req: falcon.Request, resp: falcon.Response, user: User, row: ApiKey) -> None:
        """The page of ``user``'s key ``row``."""
        raise NotImplementedError


class KeyDetail(OwnKeyPage):
    """``/apps/keys/<api_key>``: one of my keys, its settings and audit list; POST ``action``:
    reveal, rotate, enable, disable or settings."""

    def on_post(self, req: falcon.Request, resp: falcon.Response, api_key: str = "") -> None:
        self._guard(partial(self.change, api_key=api_key), req, resp)

    def view(self, req: falcon.Request, resp: falcon.Response, user: User, row: ApiKey) -> None:
        """GET: the page."""
        self.show(req, resp, user, row)

    def show(self, req: falcon.Request, resp: falcon.Response, user: User, row: ApiKey, *,
             error: str = "", revealed: bool = False, message: str = "",
             form: dict[str, str] | None = None) -> None:
        """The key's page; ``revealed`` shows the secrets (only ever in a POST's answer)."""
        now = self.pages.now()
        in_grace = bool(row.previous_secret) and now < row.previous_expires_at
        allowed = ", ".join(store.split_networks(row.allowed_ips))
        self.pages.render(
            resp, "keys_detail.html", status=falcon.HTTP_400 if error else falcon.HTTP_200,
            user=user, key=row, error=error, message=message, in_grace=in_grace,
            secret=row.secret if revealed else "",
            previous_secret=row.previous_secret if revealed and in_grace else "",
            audit=store.audit_list(row), grace_choices=GRACE_CHOICES,
            default_limit=self.pages.ctx.settings.ratelimit_per_key,
            form=form or {"name": row.name, "description": row.description,
                          "callback_url": row.callback_url, "allowed": allowed,
                          "always_signed": "1" if row.always_signed else "",
                          "rate_limit": row.rate_limit,
                          "require_hmac": "1" if row.require_hmac else "",
                          "legacy_oauth": "1" if row.legacy_oauth else ""},
            csrf_token=self.csrf_token(req))

    def change(self, req: falcon.Request, resp: falcon.Response, api_key: str) -> None:
        """POST: one of the page's forms, named by its ``action``."""
        form = read_form(req)
        user = self.member(req, resp)
        if user is None:
            return
        row = own_key(user, api_key)
        self.pages.check_csrf(req, form)
        action = form.get("action", "")
        handler: Callable[..., Any] | None = {
            "reveal": self.reveal, "rotate": self.rotate, "enable": self.toggle,
            "disable": self.toggle, "settings": self.settings}.get(action)
        if handler is None:
            raise BadRequest("Choose one of the page's buttons.")
        handler(req, resp, user, row, form)

    def reveal(self, req: falcon.Request, resp: falcon.Response, user: User, row: ApiKey,
               form: dict[str, str]) -> None:
        store.audit(row, user.username, "revealed the secret", now=self.pages.now())
        self.show(req, resp, user, row, revealed=True)

    def rotate(self, req: falcon.Request, resp: falcon.Response, user: User, row: ApiKey,
               form: dict[str, str]) -> None:
        try:
            grace = int(form.get("grace", ""))
            row = store.rotate_secret(row.key, grace, now=self.pages.now(), actor=user.username)
        except (ValueError, store.KeyStoreError):
            return self.show(req, resp, user, row,
                             error="Choose a grace period of 0 to 7 days for the old secret.")
        self.pages.ctx.keys.invalidate(row.key)
        self.show(req, resp, user, row, revealed=True,
                  message="The secret was rotated. Give the new secret to the application.")

    def toggle(self, req: falcon.Request, resp: falcon.Response, user: User, row: ApiKey,
               form: dict[str, str]) -> None:
        store.set_enabled(row.key, form["action"] == "enable", actor=user.username,
                          now=self.pages.now())
        self.pages.ctx.keys.invalidate(row.key)
        self.pages.redirect(resp, f"{KEYS_HOME}/{row.key}")

    def settings(self, req: falcon.Request, resp: falcon.Response, user: User, row: ApiKey,
                 form: dict[str, str]) -> None:
        try:
            networks = split_allowed(form.get("allowed", ""))
            try:
                store.parse_networks(networks)
            except store.KeyStoreError as error:
                raise store.KeyStoreError(
                    f"Allowed addresses: {error}. Write IPv4 or IPv6 addresses or CIDR ranges "
                    "such as 192.0.2.0/24 or 2001:db8::/32, separated by commas or spaces.",
                ) from None
            store.update_key(
                row.key, actor=user.username, now=self.pages.now(), name=form.get("name", ""),
                description=form.get("description", "").strip(),
                callback_url=(form.get("callback_url", "").strip() if row.auth_type == "web"
                              else None),
                always_signed=bool(form.get("always_signed")), allowed=networks,
                rate_limit=(self.owners_limit(row, form["rate_limit"]) if "rate_limit" in form
                            else None),  # a form from before the field: unchanged
                require_hmac=bool(form.get("require_hmac")),
                legacy_oauth=bool(form.get("legacy_oauth")))
        except store.KeyStoreError as error:
            message = str(error).replace("--callback URL", "a callback URL")
            return self.show(req, resp, user, row, error=message[:1].upper() + message[1:],
                             form=form)
        self.pages.ctx.keys.invalidate(row.key)
        self.pages.redirect(resp, f"{KEYS_HOME}/{row.key}")


    def owners_limit(self, row: ApiKey, text: str) -> str:
        """The form's rate limit as stored; a new one must stay within API_RATELIMIT_PER_KEY (an
        owner is anyone who signed up: raising their own key's budget would void it)."""
        try:
            limit = store.check_rate_limit(text)
        except store.KeyStoreError as error:
            raise store.KeyStoreError(f"Rate limit: {error}.") from None
        default = self.pages.ctx.settings.ratelimit_per_key
        if limit and limit != row.rate_limit and not ratelimit.within(limit, default):
            raise store.KeyStoreError(
                f"Rate limit: {limit} allows more calls than this server's default ({default}) "
                "in one of its windows. Give each of them a window of yours no more generous, "
                "or ask the operators to raise the limit.")
        return limit


class AdminKeys(ConsolePage):
    """``/admin/keys``: every key with its owner and last 24 h calls and errors; administrators
    may disable or enable any of them. Everyone else gets 404."""

    def admin(self, req: falcon.Request) -> User:
        user = self.pages.user(req)
        if user is None or not user.is_admin:
            raise not_found()
        return user

    def get(self, req: falcon.Request, resp: falcon.Response) -> None:
        user = self.admin(req)
        self.pages.render(resp, "admin_keys.html", user=user, keys=store.list_keys(),
                          usage=calls_last_day(self.pages.now()),
                          csrf_token=self.csrf_token(req))

    def post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = read_form(req)
        user = self.admin(req)
        self.pages.check_csrf(req, form)
        action = form.get("action", "")
        if action not in ("enable", "disable"):
            raise BadRequest("Choose Enable or Disable.")
        try:
            row = store.set_enabled(form.get("api_key", "").strip().lower(), action == "enable",
                                    actor=user.username, now=self.pages.now())
        except store.KeyStoreError:
            raise not_found() from None
        self.pages.ctx.keys.invalidate(row.key)
        self.pages.redirect(resp, ADMIN_HOME)


def add_routes(app: falcon.App, pages: Pages) -> None:
    """Mount the key console on ``app``, sharing the other pages' ``Pages`` (templates,
    sessions)."""
    app.add_route(KEYS_HOME, KeyList(pages))
    app.add_route(KEYS_HOME + "/{api_key}", KeyDetail(pages))
    app.add_route(ADMIN_HOME, AdminKeys(pages))
