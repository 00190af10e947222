"""Paging for list methods (spec §10.1): page/per_page in, total/page/pages/per_page/count out.

Each list method declares one ``Paging`` (what a page holds, the default and the maximum
``per_page``); its handler pages with it and its ``per_page``/``page`` help texts are made from the
same numbers, so the help never disagrees with what the method does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api.core.errors import InvalidPaging

FIRST_PAGE = 1


@dataclass(frozen=True)
class Page:
    """Which slice of a list a call asked for."""

    page: int
    per_page: int

    @property
    def offset(self) -> int:
        """Rows to skip."""
        return (self.page - 1) * self.per_page

    def attrs(self, total: int, count: int) -> dict[str, Any]:
        """The paging attributes every list container carries."""
        pages = (total + self.per_page - 1) // self.per_page
        return {"total": total, "page": self.page, "pages": pages, "per_page": self.per_page,
                "count": count}

    def apply(self, query: Any) -> Any:
        """A peewee query limited to this page."""
        return query.limit(self.per_page).offset(self.offset)


def paging(page: int | None, per_page: int | None, *, default: int, maximum: int) -> Page:
    """Validate paging parameters: not positive is 143; per_page over the method's maximum is
    lowered to it, as the live service did, and the answer's ``per_page`` says the real value."""
    page = FIRST_PAGE if page is None else page
    per_page = default if per_page is None else per_page
    if page < 1 or per_page < 1:
        raise InvalidPaging(f"page={page} per_page={per_page}")
    return Page(page=page, per_page=min(per_page, maximum))


# How a method's help words its paging: (per_page, page) templates. doc.getList, doc.search and
# doc.getVisitors say it one way, the album and comment lists the other; both are on the wire.
NUMBER_OF = ("Number of {items} per page (default {default}, max {maximum}).",
             "The page of results to return (default {first}).")
PER_PAGE = ("{items} per page: {default} by default, at most {maximum}.", "The page, from {first}.")


@dataclass(frozen=True)
class Paging:
    """One list method's paging: its handler calls ``page(page, per_page)``, and its parameters
    carry ``per_page_help`` and ``page_help``, both made from ``default`` and ``maximum``."""

    items: str  # what a page holds, as the help names it ("documents", "Comments" …)
    default: int
    maximum: int
    wording: tuple[str, str] = PER_PAGE

    def page(self, page: int | None, per_page: int | None) -> Page:
        """The slice a call asked for (``paging`` with this method's numbers)."""
        return paging(page, per_page, default=self.default, maximum=self.maximum)

    @property
    def per_page_help(self) -> str:
        """The ``per_page`` parameter's help: what a page holds, the default, the maximum."""
        return self.wording[0].format(items=self.items, default=self.default,
                                      maximum=self.maximum)

    @property
    def page_help(self) -> str:
        """The ``page`` parameter's help."""
        return self.wording[1].format(first=FIRST_PAGE)
