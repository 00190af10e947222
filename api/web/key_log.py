"""``/apps/keys/<api_key>/log``: the key's request log (issue 9 item 4), for its owner only.

The newest failed calls (api/runtime/request_log.py keeps ``Settings.request_log_bound`` per key):
time, method, code, message, client address and format; for a 105 (invalid signature) the string
the server signed (md5.signature_base_string with ``<secret>`` for the secret, or the HMAC-SHA256
base string, the auth_token cut to 4 characters) and the api_sig the client sent, so the owner can
compare with what their client signed. Another member's key, or no key, is 404 like the key's page.
"""

from __future__ import annotations

import falcon

from api.runtime.request_log import entries
from api.web.console import KEYS_HOME, OwnKeyPage
from api.web.pages import Pages
from keys.models import ApiKey, User


class KeyLog(OwnKeyPage):
    """GET only: the log, newest first."""

    def view(self, req: falcon.Request, resp: falcon.Response, user: User, row: ApiKey) -> None:
        self.pages.render(resp, "keys_log.html", user=user, key=row,
                          entries=entries(row.key, self.pages.ctx.settings.request_log_bound),
                          bound=self.pages.ctx.settings.request_log_bound)


def add_routes(app: falcon.App, pages: Pages) -> None:
    """Mount the log page beside the key console."""
    app.add_route(KEYS_HOME + "/{api_key}/log", KeyLog(pages))
