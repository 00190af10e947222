"""The API explorer on each method's page (issue 9 item 6): a logged-in member picks one of their
keys, fills the parameters and a format, and sees the request URL, the exact string signed, the
signature and the live answer.

The form POSTs (CSRF-protected) to ``/help/api/method/<name>/explore``; the server builds the call,
signs it with ``api.signing.md5`` (the code the pipeline checks with) and runs it through the real
``Dispatcher`` (no HTTP loopback), then renders the method's page with the result. The secret
never reaches the browser: the signed string is shown with ``<secret>`` in its place.

Tokens are stored only as hashes, so an existing token cannot be reused. "Act as me" mints a token
server-side for the logged-in member and the chosen key with the method's permission
(``spec.perms``), uses it for this one call and deletes it at once: it lives for one call, never
shows in the member's authorized applications, and the page shows only its first 4 characters.
Another member's key is 404, as on the key console.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import falcon

from api.auth.tokens import issue_token, token_hash
from api.core.dispatch import ApiRequest, Dispatcher, debug_string, shown_token
from api.core.registry import METHOD_HELP_PATH
from api.formats import DEFAULT_FORMAT, FORMATS
from api.models.grants import Token
from api.signing import md5
from api.web.console import own_key
from api.web.help import HelpMethod
from api.web.home import base_url
from api.web.pages import BadRequest, Pages, read_form

EXPLORE_SUFFIX = "/explore"
PARAM_PREFIX = "param_"


class ExploreMethod(HelpMethod):
    """POST ``/help/api/method/<name>/explore``: run the call, answer the method's page with it."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str = "") -> None:
        """The explorer answers its form only; a GET goes to the method's page."""
        spec = self.pages.ctx.registry.get(name)
        self.pages.redirect(resp, METHOD_HELP_PATH + (spec.name if spec else ""))

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str = "") -> None:
        self._guard(lambda req, resp: self.explore(req, resp, name), req, resp)

    def explore(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        form = read_form(req)
        spec = self.pages.ctx.registry.get(name)
        if spec is None:
            return self.method(req, resp, name)  # the unknown name's 404 page
        user = self.pages.user(req)
        if user is None:
            raise BadRequest("Log in to try methods with your keys.", falcon.HTTP_403)
        self.pages.check_csrf(req, form)
        row = own_key(user, form.get("api_key", ""))
        fmt = form.get("format", DEFAULT_FORMAT)
        if fmt not in FORMATS:
            fmt = DEFAULT_FORMAT
        params: dict[str, str] = {"api_key": row.key}
        for param in spec.params:
            value = form.get(PARAM_PREFIX + param.name, "")
            if value != "":
                params[param.name] = value
        ctx = self.pages.ctx
        # Signed with the secret the dispatcher will check against (the cached key record), so
        # a rotation made elsewhere is seen the same way by both, never a 105 of our own making.
        record = ctx.keys.lookup(row.key)
        secret = record.secret.reveal() if record is not None else row.secret
        token = ""
        try:
            if form.get("as_me") and not spec.keyless:
                token = issue_token(row.key, user, dict(spec.perms or {}), ctx.new_secret,
                                    now=int(ctx.clock()))
                params["auth_token"] = token
            params[md5.SIGNATURE_PARAM] = md5.signature(params, spec.name, secret)
            request = ApiRequest(http_method="POST", method_name=spec.name, format_name=fmt,
                                 params=params, client_addr=req.remote_addr or "",
                                 base_url=base_url(self.pages, req))
            reply = Dispatcher(ctx).handle(request)
        finally:
            if token:  # one call only: the minted token is gone before the page is drawn
                Token.delete().where(Token.token_hash == token_hash(token)).execute()
        shown = {name: shown_token(value) if name == "auth_token" else value
                 for name, value in params.items()}
        explored: dict[str, Any] = {
            "url": f"{base_url(self.pages, req)}/api/{spec.name}/{fmt}?{urlencode(shown)}",
            "signed": debug_string(request, spec.name),
            "signature": params[md5.SIGNATURE_PARAM],
            "code": reply.code, "content_type": reply.content_type,
            # a method that echoes the token (auth.checkToken) shows it shortened too
            "body": reply.body.decode("utf-8", "replace").replace(token or "\0",
                                                                 shown_token(token)),
            "token": bool(token)}
        self.method(req, resp, name, explored=explored,
                    form={**form, "csrf_token": ""})


def add_routes(app: falcon.App, pages: Pages) -> None:
    """Mount the explorer's form target beside the method pages."""
    app.add_route(METHOD_HELP_PATH.rstrip("/") + "/{name}" + EXPLORE_SUFFIX, ExploreMethod(pages))
