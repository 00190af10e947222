"""Row ids as they arrive in parameters: decimal, and small enough for an INTEGER column.

A number too large for the database cannot name a row; treating it as "no such row" keeps SQLite's
OverflowError and PostgreSQL's "integer out of range" (both would be a 500) away from every query.
"""

from __future__ import annotations

import re

INT_RANGE = range(-(2**31), 2**31)  # what an INTEGER column holds on SQLite and PostgreSQL alike
_DECIMAL = re.compile(r"[0-9]{1,10}")


def as_id(text: str) -> int | None:
    """The id ``text`` names, or None when it is not a decimal id an INTEGER column can hold."""
    text = text.strip()
    if not _DECIMAL.fullmatch(text):
        return None
    value = int(text)
    return value if value in INT_RANGE else None
