"""Paging for list methods (spec §10.1): page/per_page in, total/page/pages/per_page/count out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api.core.errors import InvalidPaging


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
    page = 1 if page is None else page
    per_page = default if per_page is None else per_page
    if page < 1 or per_page < 1:
        raise InvalidPaging(f"page={page} per_page={per_page}")
    return Page(page=page, per_page=min(per_page, maximum))
