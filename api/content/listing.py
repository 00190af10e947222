"""A page of documents as a ``<docs total page pages per_page count><doc/>…</docs>`` tree, for
the lists that page over any member's documents (tags.docs.getList, explore.docs.getPopular and
explore.docs.homepage; spec §10.1). At most three queries at any page size: the page with its
owners (ids first, then rows, for a ranked list), a count when the page is full (counted
along for a ranked list), the thumbs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from peewee import SQL, Expression, ModelSelect, fn

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
              ranking: ModelSelect[Doc] | None = None) -> dict[str, Any]:
    """One page of the docs matching ``where``, in ``order``.

    ``ranking`` (a list whose order costs a grouped pass, explore.docs.getPopular) is a select
    of docs joined to what ranks them: one query picks the page's ids from it and counts every
    match along (``count(*) OVER ()``), so the ranking runs once, not twice, and its sort
    carries ids, not whole rows; a second reads those docs with their owners by primary key.
    Only a page past the end counts apart."""
    total: int | None = None
    if ranking is None:
        query = owned_docs().where(*where)
        docs = list(page.apply(query.order_by(*order)))
    else:
        query = ranking.where(*where)
        picked = list(page.apply(query.select(Doc.id, fn.COUNT(SQL("*")).over())
                                 .order_by(*order)).tuples())
        found = {doc.id: doc for doc in owned_docs().where(Doc.id.in_([i for i, _ in picked]))
                 } if picked else {}
        docs = [found[doc_id] for doc_id, _ in picked if doc_id in found]
        if picked:
            total = max(int(picked[0][1]), page.offset + len(docs))
    if total is None and len(docs) < page.per_page and (docs or page.page == 1):
        total = page.offset + len(docs)  # the last page: the count is known without a query
    elif total is None:
        total = int(query.select(SQL("1")).count())
    items = doc_trees(docs, call, extras, thumbsize)
    return {"docs": {**page.attrs(total, len(items)), "doc": items}}
