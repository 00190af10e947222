"""Member profiles at ``/home/<alias>``, the icon settings page and contact forms (issue 13)."""

from __future__ import annotations

import falcon

from api.web.pages import Pages


def add_routes(app: falcon.App, pages: Pages) -> None:
    """Mount the profile pages."""
