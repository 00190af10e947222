"""What several method families share: permission requirements, the method-specific errors whose
code and wording are the same wherever they appear (spec §3.2), the parameters doc.* and upload.*
both take (with their help), the id lists album.* and doc.albums.* read, and the per-media file
size limit of upload.* and account.getQuota."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from peewee import CharField

from api.core.context import Call
from api.core.errors import ApiError, method_error
from api.core.ids import as_id

READ = {"doc": "read"}
WRITE = {"doc": "write"}

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
    """A comma list of ids, in order and without repeats, or 2; also 2 as soon as it names more
    than ``limit`` different ids. One linear pass: a caller checks a huge list before it locks
    or reads anything."""
    ids: dict[int, None] = {}  # a set that keeps the order
    for part in filter(str.strip, raw.split(",")):
        row_id = as_id(part)
        if row_id is None:
            raise InvalidArgument(f"not an id: {part[:20]!r}")
        ids[row_id] = None
        if limit is not None and len(ids) > limit:
            raise InvalidArgument(f"more than {limit} ids")
    return list(ids)


def _max_file_bytes(call: Call, media: str) -> int:
    """The size limit for one media type (spec §6.5 maxfilesize), never above the body limit."""
    settings = call.ctx.settings
    return min(getattr(settings, f"max_{media}_bytes"), settings.max_body_bytes)
