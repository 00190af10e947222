"""Keyword and member tags as the spec writes them (§10.4): comma lists where a multi-word keyword
is quoted (``"blue sky",sunset``), members by id or username. Shared by every method that tags docs.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable

from peewee import fn

from api.core.ids import as_id
from api.models.docs import Doc, Tag
from keys.models import User

MAX_TAG_LENGTH = 255


def parse_keywords(raw: str) -> list[str]:
    """The keywords of a comma list, quotes honoured, blanks dropped, duplicates (any case) once."""
    seen: set[str] = set()
    out: list[str] = []
    for row in csv.reader([raw], skipinitialspace=True):
        for word in row:
            keyword = " ".join(word.split())[:MAX_TAG_LENGTH]
            if keyword and keyword.lower() not in seen:
                seen.add(keyword.lower())
                out.append(keyword)
    return out


def find_members(refs: Iterable[str]) -> tuple[list[User], list[str]]:
    """The users named by ids or usernames, and the references that named nobody."""
    refs = [ref.strip() for ref in refs if ref.strip()]
    ids = [row_id for row_id in map(as_id, refs) if row_id is not None]
    names = [ref.lower() for ref in refs if as_id(ref) is None]
    # Usernames match in any case ("Alice" is "alice"), as a reference is folded above.
    found = (list(User.select().where(User.id.in_(ids) | fn.LOWER(User.username).in_(names)))
             if refs else [])
    by_ref = {str(user.id): user for user in found}
    by_ref |= {user.username.lower(): user for user in found}
    users = list({by_ref[ref.lower()].id: by_ref[ref.lower()]
                  for ref in refs if ref.lower() in by_ref}.values())
    return users, [ref for ref in refs if ref.lower() not in by_ref]


def add_tags(doc: Doc, *, keywords: Iterable[str] = (), members: Iterable[User] = (),
             added_by: User | None = None, now: int) -> None:
    """Tag ``doc`` with the keywords and members it lacks (one query to read, one to write)."""
    current = Tag.select(Tag.type, Tag.norm).where(Tag.doc == doc)
    existing = {(tag.type, tag.norm) for tag in current}
    rows = []
    for keyword in keywords:
        if ("keyword", keyword.lower()) not in existing:
            existing.add(("keyword", keyword.lower()))
            rows.append({"doc": doc, "type": "keyword", "tag": keyword, "norm": keyword.lower(),
                         "member": None, "added_by": added_by, "created_at": now})
    for user in members:
        norm = str(user.id)
        if ("member", norm) not in existing:
            existing.add(("member", norm))
            rows.append({"doc": doc, "type": "member", "tag": user.username, "norm": norm,
                         "member": user, "added_by": added_by, "created_at": now})
    if rows:
        Tag.insert_many(rows).execute()
