"""What several method families share: permission requirements, the method-specific errors whose
code and wording are the same wherever they appear (spec §3.2), the parameters doc.* and upload.*
both take (with their help), the id lists album.* and doc.albums.* read, the ordering of
album.orderList and folder.orderList, and the per-media file size limit of upload.* and
account.getQuota."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any

from peewee import CharField, Expression, ValuesList

from api.core.context import Call
from api.core.errors import ApiError, method_error
from api.core.ids import as_id
from keys.db import as_tuples

READ = {"doc": "read"}
WRITE = {"doc": "write"}

_LIST_ITEM = re.compile(r"[^,]+")  # an item of a comma list; ",," holds none
ORDER_CHUNK = 5_000  # rows put_in_order numbers per statement: two parameters a row, far under
# SQLite's 32,766 and PostgreSQL's 65,535 a statement

DocNotFound = method_error(1, "Document not found", "The document ID is invalid or insufficient "
                                                    "permissions to view this doc.")
UserNotFound = method_error(1, "User not found", "The user ID is either invalid or the account is "
                                                 "closed/suspended.")
AlbumNotFound = method_error(1, "Album not found", "The album ID is invalid or insufficient "
                                                   "permissions to view this album.")
InvalidArgument = method_error(2, "Invalid argument", "One or many required arguments were not "
                                                      "sent or have an invalid value.")

# The sharing parameters doc.setPerms and upload.file take, with their help.
IsPublic = Annotated[bool | None, "1 public, 0 not."]
IsFamily = Annotated[bool | None, "1 visible to family."]
IsFriend = Annotated[bool | None, "1 visible to friends."]
SAFETY_HELP = "1 all audiences, 2 not for all audiences, 3 adults only."
Safety = Annotated[int | None, SAFETY_HELP]

# The parameters every list of documents (doc.getList, doc.search, explore.docs.*) takes.
Safesurf = Annotated[int | None, "Maximum safety level: 1 (default), 2, 3 (3 needs an "
                                 "authenticated caller)."]
Thumbsize = Annotated[str, "Thumbnail size: 75x (default), 100, 240, 250x, 500, 560, 640, 800, "
                           "1024 …"]
MediaFilter = Annotated[str, "photo, video, audio or other (a comma list is accepted)."]


def fitting(value: str, column: CharField, error: type[ApiError]) -> str:
    """``value`` if it fits ``column``, else ``error``: PostgreSQL refuses text longer than a
    VARCHAR (a 500), where SQLite would have stored it."""
    if column.max_length is not None and len(value) > column.max_length:
        raise error(f"{column.name} longer than {column.max_length} characters")
    return value


def extra_help(extras: Iterable[str]) -> str:
    """The help of an ``extra`` parameter that takes these names."""
    return "A comma-separated list of extra information to fetch: " + ", ".join(extras)


def parse_ids(raw: str, limit: int | None = None) -> list[int]:
    """A comma list of ids, in order and without repeats, or 2; also 2 as soon as it has more
    than ``limit`` items, a repeat or a blank item counting as one (counting different ids let a
    body of ``1,1,1,…`` be read whole inside the write's transaction). One linear pass that
    stops at the cap: a caller checks a huge list before it locks or reads anything."""
    ids: dict[int, None] = {}  # a set that keeps the order
    for count, item in enumerate(_LIST_ITEM.finditer(raw), 1):
        if limit is not None and count > limit:
            raise InvalidArgument(f"more than {limit} ids")
        part = item.group()
        if not part.strip():
            continue
        row_id = as_id(part)
        if row_id is None:
            raise InvalidArgument(f"not an id: {part[:20]!r}")
        ids[row_id] = None
    return list(ids)


def put_in_order(model: Any, owned: Expression, first: list[int],
                 not_found: type[ApiError]) -> None:
    """Number the rows ``owned`` selects 1, 2, … in ``model.position``: ``first`` in its order,
    then the others in their current order (position, newest first); an id of ``first`` not
    among them is ``not_found``. album.orderList's and folder.orderList's ordering.

    Linear in the rows: one read, then an UPDATE joined to a VALUES list of (id, position) per
    ``ORDER_CHUNK`` rows. One CASE with a branch per row had each row's update scan the
    branches, quadratic (12.8 s for 20,000 folders, the SQLite write lock held all along). The
    rows go in id order, so two calls at once lock them in one order (PostgreSQL).
    """
    current = [row_id for (row_id,) in as_tuples(
        model.select(model.id).where(owned).order_by(model.position, model.id.desc()).tuples())]
    strangers = set(first).difference(current)
    if strangers:
        raise not_found(f"not yours: {sorted(strangers)[:10]}")
    named = set(first)
    order = first + [row_id for row_id in current if row_id not in named]
    numbered = sorted(zip(order, range(1, len(order) + 1), strict=True))
    for start in range(0, len(numbered), ORDER_CHUNK):
        chunk = ValuesList(numbered[start:start + ORDER_CHUNK], alias="numbered")
        # VALUES columns are column1, column2 on SQLite and PostgreSQL alike.
        (model.update(position=chunk.c.column2).from_(chunk)
         .where(model.id == chunk.c.column1).execute())


def _max_file_bytes(call: Call, media: str) -> int:
    """The size limit for one media type (spec §6.5 maxfilesize), never above the body limit."""
    settings = call.ctx.settings
    return min(getattr(settings, f"max_{media}_bytes"), settings.max_body_bytes)
