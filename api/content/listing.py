"""A page of documents as a ``<docs total page pages per_page count><doc/>…</docs>`` tree, for
the lists that page over any member's documents (tags.docs.getList, explore.docs.getPopular and
explore.docs.homepage; spec §10.1). At most three queries at any page size: the page with its
owners, a count when the page is full, the thumbs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from peewee import SQL, Expression, ModelSelect

from api.content.trees import doc_trees
from api.core.context import Call
from api.core.paging import Page
from api.models.docs import Doc
from keys.models import User


def owned_docs() -> ModelSelect[Doc]:
    """Docs with their owners joined, so ``extra=owner`` costs no query of its own."""
    return Doc.select(Doc, User).join(User, on=(Doc.owner == User.id))


def docs_page(call: Call, where: Sequence[Expression], order: Sequence[Any], page: Page,
              extras: set[str], thumbsize: str, *,
              rows: ModelSelect[Doc] | None = None) -> dict[str, Any]:
    """One page of the docs matching ``where``, in ``order``; ``rows`` is the select to page
    (default ``owned_docs()``), for a list that joins more (a score) before it filters."""
    query = rows if rows is not None else owned_docs()
    docs = list(page.apply(query.where(*where).order_by(*order)))
    if len(docs) < page.per_page and (docs or page.page == 1):
        total = page.offset + len(docs)  # the last page: the count is known without a query
    else:
        matching = query.where(*where).select(SQL("1"))
        total = int(matching.count())
    items = doc_trees(docs, call, extras, thumbsize)
    return {"docs": {**page.attrs(total, len(items)), "doc": items}}
