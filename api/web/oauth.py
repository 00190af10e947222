"""The OAuth pages (spec §5.5, docs/oauth.md). ``/apps/oauth/request`` and ``/apps/oauth/access``
answer form-encoded, as OAuth clients read them: a refusal is 400 or 401 with ``oauth_problem``,
429 past a rate limit, our own failure a bare 500/503, never a page or a traceback. Each costs
the client address one call of its ``frob`` budget (API_RATELIMIT_FROBS, as auth.getFrob), and a
request token one of its consumer key's (api.auth.oauth). ``/apps/oauth/authorize`` is the
authorize page's consent form for a request token, with the levels asked as ``perm_*``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import falcon

from api.auth import frobs
from api.auth.oauth import FORM, OOB, RATE_LIMITED, OAuthProvider, Pending, Refused
from api.core.context import OAuthRequest
from api.core.errors import RETRY_AFTER_SECONDS, ApiError, ClientIpQuota
from api.core.transport import path_as_sent
from api.web.authorize import AuthorizeLink, with_query
from api.web.pages import SESSION_COOKIE, BadRequest, Page, Pages, read_form, read_query
from keys.db import is_busy

log = logging.getLogger("api.web")

DENIED_PROBLEM = "permission_denied"  # what the callback gets on Deny (OAuth Problem Reporting)
ADDRESS_SCOPE = "frob"  # a request token is OAuth's frob: the same per-address budget


def signed_request(req: falcon.Request, public_url: str) -> OAuthRequest:
    """What the request's OAuth signature covers (an urlencoded body only, as RFC 5849 says)."""
    urlencoded = (req.content_type or "").lower().startswith(FORM["Content-Type"])
    body = read_form(req) if req.method == "POST" and urlencoded else {}
    base = public_url.rstrip("/") or f"{req.scheme}://{req.netloc}"
    return OAuthRequest(http_method=req.method, url=base + path_as_sent(req.env),
                        authorization=req.get_header("Authorization") or "",
                        query=read_query(req), body=body)


class TokenEndpoint:
    """``/apps/oauth/request`` or ``/apps/oauth/access``, GET or POST alike."""

    def __init__(self, pages: Pages, issue: Callable[[OAuthRequest], str]) -> None:
        self.pages = pages
        self.issue = issue

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = FORM["Content-Type"]
        resp.set_header("Cache-Control", "no-store")
        try:
            self.pages.limit(req, ADDRESS_SCOPE)
            resp.text = self.issue(signed_request(req, self.pages.ctx.settings.public_url))
        except Refused as refused:
            self.refuse(resp, refused)
        except (BadRequest, ApiError) as error:
            if isinstance(error, BadRequest) and error.status == falcon.HTTP_429:
                return self.refuse(resp, Refused(ClientIpQuota(), RATE_LIMITED, 429,
                                                 retry_after=error.retry_after))
            if isinstance(error, ApiError) and error.code >= 500:  # the nonce store is down
                return self.fail(resp, falcon.HTTP_503)
            self.refuse(resp, Refused(ApiError(), "parameter_rejected", 400))
        except Exception as error:
            if is_busy(error):
                return self.fail(resp, falcon.HTTP_503)
            log.exception("%s failed", req.path)
            self.fail(resp, falcon.HTTP_500)

    on_post = on_get

    @staticmethod
    def refuse(resp: falcon.Response, refused: Refused) -> None:
        """400, 401 or 429 with oauth_problem (a 401 names the scheme, as HTTP requires; a 429
        says when to come back)."""
        resp.status = refused.status
        if refused.status == 401:
            resp.set_header("WWW-Authenticate", 'OAuth realm="ipernity"')
        if refused.retry_after:
            resp.set_header("Retry-After", str(refused.retry_after))
        resp.text = refused.reply()

    @staticmethod
    def fail(resp: falcon.Response, status: str) -> None:
        """Our failure: no details; a 503 says when to come back."""
        resp.status = status
        if status == falcon.HTTP_503:
            resp.set_header("Retry-After", str(RETRY_AFTER_SECONDS))
        resp.text = ""


class OAuthAuthorize(Page):
    """``/apps/oauth/authorize?oauth_token=…&perm_doc=…``: Allow sends the browser to the request
    token's callback with oauth_token and oauth_verifier (``oob``: the verifier is shown), Deny
    with oauth_problem=permission_denied."""

    def __init__(self, pages: Pages, provider: OAuthProvider) -> None:
        super().__init__(pages)
        self.provider = provider

    def consent(self, query: Mapping[str, str]) -> tuple[Pending, AuthorizeLink]:
        """The pending request token and what it asks, as the authorize page shows a link."""
        pending = self.provider.pending(query.get("oauth_token", ""))
        return pending, AuthorizeLink(key=pending.key, owner=pending.owner, frob=None,
                                      permissions=frobs.requested_permissions(query))

    def get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _, link = self.consent(read_query(req))
        user = self.pages.user(req)
        if user is None:
            return self.pages.login_redirect(req, resp)
        self.pages.render(resp, "authorize.html", link=link, user=user, action=req.relative_uri,
                          csrf_token=self.pages.accounts.csrf_token(req.cookies[SESSION_COOKIE]))

    def post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form, query = read_form(req), read_query(req)
        pending, link = self.consent(query)
        user = self.pages.user(req)
        if user is None:
            return self.pages.login_redirect(req, resp)
        self.pages.check_csrf(req, form)
        if form.get("decision") not in ("allow", "deny"):
            raise BadRequest("Choose Allow or Deny.")
        allow = form["decision"] == "allow"
        verifier = self.provider.decide(pending, allow=allow, user=user,
                                        permissions=link.permissions)
        if pending.row.callback != OOB:
            answer = {"oauth_verifier": verifier} if allow else {"oauth_problem": DENIED_PROBLEM}
            return self.pages.redirect(resp, with_query(pending.row.callback,
                                                        oauth_token=query["oauth_token"],
                                                        **answer))
        if allow:
            return self.pages.render(resp, "oauth_verifier.html", name=link.key.name,
                                     verifier=verifier, user=user)
        self.pages.render(resp, "message.html", title="Access refused", user=user,
                          message=f"You refused access to {link.key.name}. The application "
                                  "cannot act on your behalf.")


def add_routes(app: falcon.App, pages: Pages) -> None:
    """Mount /apps/oauth/request, /apps/oauth/authorize and /apps/oauth/access."""
    provider = OAuthProvider(pages.ctx)
    app.add_route("/apps/oauth/request", TokenEndpoint(pages, provider.request_token))
    app.add_route("/apps/oauth/authorize", OAuthAuthorize(pages, provider))
    app.add_route("/apps/oauth/access", TokenEndpoint(pages, provider.access_token))
