"""``/``: the front door, what this service is and where to go next (issue 9 item 1)."""

from __future__ import annotations

import falcon

from api.web.pages import Page, Pages


def base_url(pages: Pages, req: falcon.Request) -> str:
    """The server's public base URL, as the API's media URLs use it (API_PUBLIC_URL or the
    request's own scheme and host)."""
    return pages.ctx.settings.public_url.rstrip("/") or f"{req.scheme}://{req.netloc}"


class Home(Page):
    """The home page; it names the logged-in member and links the console pages."""

    def get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.pages.render(resp, "home.html", user=self.pages.user(req),
                          base_url=base_url(self.pages, req))


def add_routes(app: falcon.App, pages: Pages) -> None:
    """Mount the home page."""
    app.add_route("/", Home(pages))
