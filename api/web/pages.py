"""The HTML pages' falcon edge: sign-up, login, logout, authorize and authorized applications.

Resources only read the request, call the plain functions of ``accounts`` and ``authorize``, and
render a jinja2 template. Every page is sent with anti-framing headers; a bad link or form gets an
HTML error page with a 4xx status, never a traceback.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import falcon
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.auth import frobs
from api.auth.frobs import FlowError
from api.core.context import AppContext, Quota
from api.core.errors import RETRY_AFTER_SECONDS, ApiError
from api.core.permissions import described
from api.core.transport import decode_urlencoded
from api.runtime import ratelimit
from api.runtime.http_log import withheld
from api.web import authorize, static
from api.web.accounts import Accounts, Refused, session_secret
from keys.db import is_busy
from keys.models import User

log = logging.getLogger("api.web")

SESSION_COOKIE = "sid"
PRE_COOKIE = "pre"  # seeds CSRF tokens of the login and sign-up forms, before a session exists
HOME = "/apps/authorized"
_MAX_FORM = 64 * 1024
_SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


class BadRequest(Exception):
    """A form or link the pages refuse; the message is shown on the error page."""

    def __init__(self, message: str, status: str = falcon.HTTP_400, *,
                 retry_after: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after  # seconds, sent as Retry-After (a 429)


def safe_next(target: str | None) -> str:
    """A local path to go back to after login; anything else (other hosts) goes home."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return HOME
    return target


class Pages:
    """State shared by the page resources: the app context, accounts and templates."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.accounts = Accounts(session_secret(ctx.settings), ctx.clock)
        self.templates = Environment(
            loader=FileSystemLoader(Path(__file__).parent / "templates"),
            autoescape=select_autoescape(default=True))
        self.templates.globals.update(static.layout_globals())  # templates/layout.html
        self.templates.filters["date"] = lambda ts: time.strftime("%Y-%m-%d %H:%M UTC",
                                                                  time.gmtime(ts))

    def render(self, resp: falcon.Response, template: str, *,
               status: str = falcon.HTTP_200, **context: Any) -> None:
        """Send an HTML page with the security headers."""
        resp.status = status
        resp.content_type = falcon.MEDIA_HTML
        resp.set_headers(_SECURITY_HEADERS)
        resp.text = self.templates.get_template(template).render(**context)

    def redirect(self, resp: falcon.Response, location: str) -> None:
        """A 303 to ``location`` with the security headers."""
        resp.status = falcon.HTTP_303
        resp.set_headers(_SECURITY_HEADERS)
        resp.location = location

    def secure(self, req: falcon.Request) -> bool:
        """Whether cookies get the Secure flag (settings.secure_cookies: auto, always or never)."""
        mode = self.ctx.settings.secure_cookies.strip().lower()
        if mode == "auto":
            return req.scheme == "https"
        return mode in ("always", "1", "true", "yes", "on")

    def set_cookie(self, req: falcon.Request, resp: falcon.Response, name: str, value: str,
                   max_age: int | None = None) -> None:
        """An HttpOnly, SameSite=Lax cookie for the whole site."""
        resp.set_cookie(name, value, max_age=max_age, path="/", secure=self.secure(req),
                        http_only=True, same_site="Lax")

    def user(self, req: falcon.Request) -> User | None:
        """The logged-in member, if any."""
        return self.accounts.user_for(req.cookies.get(SESSION_COOKIE, ""))

    def csrf_seed(self, req: falcon.Request, resp: falcon.Response) -> str:
        """The value CSRF tokens are bound to: the session, or a pre-session cookie."""
        if self.user(req) is not None:
            return req.cookies[SESSION_COOKIE]
        seed = req.cookies.get(PRE_COOKIE, "")
        if not seed:
            seed = self.ctx.new_secret(16)
            self.set_cookie(req, resp, PRE_COOKIE, seed)
        return seed

    def check_csrf(self, req: falcon.Request, form: Mapping[str, str]) -> None:
        """Refuse a form whose token does not match this browser's session or pre-session."""
        seed = (req.cookies.get(SESSION_COOKIE, "") if self.user(req) is not None
                else req.cookies.get(PRE_COOKIE, ""))
        if not self.accounts.csrf_ok(seed, form.get("csrf_token", "")):
            raise BadRequest("The form has expired or did not come from this site. Go back, "
                             "reload the page and try again.", falcon.HTTP_403)

    def posted(self, req: falcon.Request, resp: falcon.Response,
               form: dict[str, str] | None = None) -> tuple[User, dict[str, str]] | None:
        """A logged-in member's form (``form`` when the page read it with its own cap, else the
        request's urlencoded body), its CSRF token checked; None after sending a visitor to the
        login page."""
        form = read_form(req) if form is None else form
        user = self.user(req)
        if user is None:
            self.login_redirect(req, resp)
            return None
        self.check_csrf(req, form)
        return user, form

    def login_redirect(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Send a visitor to the login page, to come back to this very request."""
        self.redirect(resp, "/login?next=" + quote(req.relative_uri, safe=""))

    def now(self) -> int:
        """The injected clock in whole seconds."""
        return int(self.ctx.clock())

    def limit(self, req: falcon.Request, scope: str) -> None:
        """Spend one of the client address's ``scope`` posts (API_RATELIMIT_SIGNUP, _LOGIN: each
        costs a password hash); past the limit, a 429 page saying when to come back."""
        quotas: list[Quota] = []
        if self.ctx.limits is not None and self.ctx.limits.spend(quotas, scope,
                                                                 req.remote_addr or ""):
            wait = ratelimit.retry_after(quotas)
            raise BadRequest(f"Too many attempts from your address. Please try again in "
                             f"{math.ceil(wait / 60)} minute(s).", falcon.HTTP_429,
                             retry_after=wait)


def read_form(req: falcon.Request, max_bytes: int = _MAX_FORM,
              too_large: str = "The form is too large.") -> dict[str, str]:
    """The urlencoded form body of at most ``max_bytes``; BadRequest when undecodable, or a 413
    saying ``too_large`` when longer."""
    length = req.content_length or 0
    if length > max_bytes:
        raise BadRequest(too_large, falcon.HTTP_413)
    raw = req.bounded_stream.read(length) if length else b""
    return decode_urlencoded(raw) if raw else {}


def read_query(req: falcon.Request) -> dict[str, str]:
    """The raw query parameters exactly as received (the link signature covers all of them)."""
    return decode_urlencoded(req.query_string) if req.query_string else {}


class Page:
    """Base of the resources: turns refusals into HTML error pages, never a bare 500."""

    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._guard(self.get, req, resp)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._guard(self.post, req, resp)

    def get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """GET is not offered unless a page overrides it."""
        raise BadRequest("This page does not exist.", falcon.HTTP_405)

    post = get

    def _guard(self, responder: Callable[[falcon.Request, falcon.Response], None],
               req: falcon.Request, resp: falcon.Response) -> None:
        try:
            responder(req, resp)
        except BadRequest as error:
            self.error(resp, str(error), error.status)
            if error.retry_after:
                resp.set_header("Retry-After", str(error.retry_after))
        except (FlowError, ApiError) as error:
            self.error(resp, str(error) if isinstance(error, FlowError)
                       else "The request could not be read.", falcon.HTTP_400)
        except Exception as error:
            # The route's template, never the path, and no exception message (api.errors'
            # rule: either may hold what a log must not).
            route = req.uri_template or "(no route)"
            if is_busy(error):  # the database was locked too long: the visitor may try again
                log.warning("page %s: database busy (%s)", route, type(error).__name__)
                self.error(resp, "The site is busy right now. Please try again in a moment.",
                           falcon.HTTP_503)
                return
            log.error("page %s failed", route, exc_info=withheld(error))
            self.error(resp, "Something went wrong on our side. Please try again later.",
                       falcon.HTTP_500)

    def error(self, resp: falcon.Response, message: str, status: str) -> None:
        """The error page (a 503 says when to come back)."""
        if status == falcon.HTTP_503:
            resp.set_header("Retry-After", str(RETRY_AFTER_SECONDS))
        self.pages.render(resp, "message.html", status=status, title="Sorry",
                          message=message, user=None)


class AccountForm(Page):
    """Shared by the sign-up and login pages: the form, shown again with a reason when refused;
    each post spends one of the address's ``scope`` rate limit."""

    template = ""
    scope = ""

    def get(self, req: falcon.Request, resp: falcon.Response) -> None:
        target = safe_next(req.get_param("next"))
        if self.pages.user(req) is not None:
            return self.pages.redirect(resp, target)
        self.show(req, resp, target=target)

    def show(self, req: falcon.Request, resp: falcon.Response, *, target: str, error: str = "",
             username: str = "") -> None:
        """Render the form (400 when it comes back with an error)."""
        seed = self.pages.csrf_seed(req, resp)
        self.pages.render(resp, self.template, status=falcon.HTTP_400 if error else falcon.HTTP_200,
                          csrf_token=self.pages.accounts.csrf_token(seed), next=target,
                          error=error, username=username, user=None)

    def post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = read_form(req)
        self.pages.check_csrf(req, form)
        self.pages.limit(req, self.scope)
        try:
            user = self.accept(req, form)
        except Refused as refused:
            return self.show(req, resp, target=safe_next(form.get("next")), error=str(refused),
                             username=form.get("username", ""))
        start_session(self.pages, req, resp, user, form.get("next"))

    def accept(self, req: falcon.Request, form: Mapping[str, str]) -> User:
        """The account the form names; Refused otherwise."""
        raise NotImplementedError


class SignUp(AccountForm):
    """``/signup``: create an account, then log in and go back where the visitor came from."""

    template = "signup.html"
    scope = "signup"

    def accept(self, req: falcon.Request, form: Mapping[str, str]) -> User:
        return self.pages.accounts.sign_up(form.get("username", ""), form.get("realname", ""),
                                           form.get("password", ""))


class Login(AccountForm):
    """``/login``: throttled password login; a new session id each time."""

    template = "login.html"
    scope = "login"

    def accept(self, req: falcon.Request, form: Mapping[str, str]) -> User:
        return self.pages.accounts.login(form.get("username", ""), form.get("password", ""),
                                         req.remote_addr or "")


def start_session(pages: Pages, req: falcon.Request, resp: falcon.Response, user: User,
                  target: str | None) -> None:
    """Replace any old session with a new one and go back to ``target``."""
    old = req.cookies.get(SESSION_COOKIE)
    if old:
        pages.accounts.end_session(old)
    pages.set_cookie(req, resp, SESSION_COOKIE, pages.accounts.start_session(user))
    resp.unset_cookie(PRE_COOKIE, path="/")
    pages.redirect(resp, safe_next(target))


class Logout(Page):
    """``/logout``: a button (GET) and the CSRF-protected logout itself (POST)."""

    def get(self, req: falcon.Request, resp: falcon.Response) -> None:
        user = self.pages.user(req)
        if user is None:
            return self.pages.redirect(resp, "/login")
        self.pages.render(resp, "logout.html", user=user,
                          csrf_token=self.pages.accounts.csrf_token(req.cookies[SESSION_COOKIE]))

    def post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = read_form(req)
        self.pages.check_csrf(req, form)
        self.pages.accounts.end_session(req.cookies.get(SESSION_COOKIE, ""))
        resp.unset_cookie(SESSION_COOKIE, path="/")
        self.pages.redirect(resp, "/login")


class Authorize(Page):
    """``/apps/authorize``: the signed link from an application, shown for Allow or Deny."""

    def get(self, req: falcon.Request, resp: falcon.Response) -> None:
        link = authorize.check_link(read_query(req), self.pages.ctx.keys, now=self.pages.now())
        user = self.pages.user(req)
        if user is None:
            return self.pages.login_redirect(req, resp)
        self.pages.render(resp, "authorize.html", link=link, user=user,
                          action=req.relative_uri,
                          csrf_token=self.pages.accounts.csrf_token(req.cookies[SESSION_COOKIE]))

    def post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = read_form(req)
        link = authorize.check_link(read_query(req), self.pages.ctx.keys, now=self.pages.now())
        user = self.pages.user(req)
        if user is None:
            return self.pages.login_redirect(req, resp)
        self.pages.check_csrf(req, form)
        decision = form.get("decision")
        if decision not in ("allow", "deny"):
            raise BadRequest("Choose Allow or Deny.")
        outcome = authorize.decide(link, user, allow=decision == "allow", now=self.pages.now(),
                                   ttl=self.pages.ctx.settings.frob_ttl,
                                   new_secret=self.pages.ctx.new_secret)
        if outcome.redirect:
            return self.pages.redirect(resp, outcome.redirect)
        self.pages.render(resp, "message.html", title=outcome.title, message=outcome.message,
                          user=user)


class Authorized(Page):
    """``/apps/authorized``: the applications a member authorized, each with a Revoke button."""

    def get(self, req: falcon.Request, resp: falcon.Response) -> None:
        user = self.pages.user(req)
        if user is None:
            return self.pages.login_redirect(req, resp)
        self.pages.render(resp, "authorized.html", user=user,
                          apps=frobs.authorized_apps(user), described=described,
                          csrf_token=self.pages.accounts.csrf_token(req.cookies[SESSION_COOKIE]))


class Revoke(Page):
    """``/apps/authorized/revoke``: revoke every token of one app; they fail with 107 at once."""

    def post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = read_form(req)
        user = self.pages.user(req)
        if user is None:
            return self.pages.redirect(resp, "/login")
        self.pages.check_csrf(req, form)
        frobs.revoke(user, form.get("api_key", ""), now=self.pages.now())
        self.pages.redirect(resp, HOME)


def add_routes(app: falcon.App, ctx: AppContext) -> Pages:
    """Mount the pages on ``app``; the Pages they share (home, help and static mount theirs)."""
    pages = Pages(ctx)
    app.add_route("/signup", SignUp(pages))
    app.add_route("/login", Login(pages))
    app.add_route("/logout", Logout(pages))
    app.add_route("/apps/authorize", Authorize(pages))
    app.add_route("/apps/authorized", Authorized(pages))
    app.add_route("/apps/authorized/revoke", Revoke(pages))
    return pages
