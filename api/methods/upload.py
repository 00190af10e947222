"""The ``upload.*`` family (spec §6): files become tickets at once, the upload worker
(api/media/worker.py) turns them into docs. Choices are in docs/uploads.md.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from api.content.access import PERM_LEVELS, owned_doc
from api.content.licenses import LICENSE_CODES, codes_in_words
from api.content.tags import find_members, parse_keywords
from api.core.context import Call, Ticket, UploadedFile
from api.core.errors import ApiError, ServiceUnavailable, method_error
from api.core.ids import as_id
from api.core.registry import MethodGroup
from api.formats.tree import Text
from api.media.imaging import Rejected, Sniffed, sniff
from api.media.queue import (
    DONE,
    FAILED,
    NO_GEO,
    QUEUED,
    WORKING,
    month_usage,
    ticket_label,
)
from api.media.storage import StorageUnavailable
from api.media.video import Limits, examine
from api.methods.common import WRITE, IsFamily, IsFriend, IsPublic, Safety, _max_file_bytes
from api.models.docs import SAFETY_LEVELS, Album, UploadTicket

group = MethodGroup()
log = logging.getLogger("api.uploads")

MAX_TICKETS = 50  # spec §6.3
PENDING_ETA = 1  # seconds; PyIpernity sleeps int(eta) between polls, so keep it small but not 0
DIRECTIONS = (1, 3, 6, 8)  # spec §6.1 dir
NO_POSITION = -999.0  # lat/lng -999 forces "no geolocation" (spec §6.1)
_TICKET = re.compile(r"(\d{1,18})(?:-(\d{1,18}))?")

_FILE_MISSING = ("File is missing or empty", "We could not find the file data.")
_FILE_TOO_BIG = ("File size exceeded limits", "The file size exceeded the acceptable size limits. "
                 "See account.getQuota for more details.")
_QUOTA = ("User exceeded upload limits", "The user has uploaded too much this month. See "
          "account.getQuota for more details.")

FileMissing = method_error(1, *_FILE_MISSING)
FileTooBig = method_error(2, *_FILE_TOO_BIG)
FileRefused = method_error(3, "File not accepted", "We could not accept this file because it is "
                           "not a readable image, video or sound: broken, truncated, too many "
                           "pixels, or too long.")
QuotaExceeded = method_error(4, *_QUOTA)
InvalidParameter = method_error(5, "Invalid parameter", "A parameter has an invalid value: "
                                "license, share flags, safety, perm_*, dir, lat/lng, created_at, "
                                "album_id or member_ids.")

ReplaceFileMissing = method_error(1, *_FILE_MISSING)
ReplaceFileTooBig = method_error(2, *_FILE_TOO_BIG)
ReplaceQuotaExceeded = method_error(3, *_QUOTA)
ReplaceDocNotFound = method_error(4, "Document not found", "The document ID is invalid or "
                                  "insufficient permissions to view this doc.")
MediaDiffers = method_error(5, "File media type differs from the existing file", "When "
                            "replacing a file, the new file media type must match the existing "
                            "file media type.")

TicketsNotFound = method_error(1, "Tickets not found",
                               "Some or all the tickets sent were not found.")
TooManyTickets = method_error(2, "Too many tickets",
                              f"At most {MAX_TICKETS} tickets may be checked at once.")


@dataclass(frozen=True)
class _Codes:
    """The error classes one upload method answers with (the two methods number them apart)."""

    missing: type[ApiError]
    too_big: type[ApiError]
    quota: type[ApiError]


_FILE_CODES = _Codes(FileMissing, FileTooBig, QuotaExceeded)
_REPLACE_CODES = _Codes(ReplaceFileMissing, ReplaceFileTooBig, ReplaceQuotaExceeded)


@dataclass(frozen=True)
class _Checked:
    """An upload after ``_checked_file``."""

    upload: UploadedFile
    sniffed: Sniffed | None  # what its bytes say (a video's probe: its media); None: broken image
    readable: bool  # False: broken, or a video or sound FFmpeg cannot read (upload.file code 3)
    work: int = 0  # seconds its processing should take (the ticket's eta)
    transcoded: bool = False  # a video or sound: web renditions to make (left to the worker)


def _checked_file(call: Call, codes: _Codes, media_hint: str | None = None) -> _Checked:
    """The uploaded file after the checks that need no full decoding: present and within its
    size; and the seconds its processing should take (``work``, the ticket's ``eta``).

    The content is sniffed, and a video or audio file probed (its container read, no frame
    decoded: that is the worker's, in its decoding slots; its media type is then the probe's, an
    MP4 with sound alone being audio); a file that is not acceptable comes back with ``None`` and
    it is the caller's choice to refuse it now or let its ticket fail.
    """
    upload = call.files.get("file")
    if upload is None or upload.size == 0:
        raise codes.missing()
    try:
        settings = call.ctx.settings
        sniffed: Sniffed | None = sniff(upload.path, upload.filename,
                                        max_pixels=settings.max_image_pixels,
                                        max_decode_bytes=settings.max_decode_bytes)
    except Rejected:
        sniffed = None
    media = sniffed.media if sniffed else (media_hint or "photo")
    if upload.size > _max_file_bytes(call, media):
        raise codes.too_big()
    if sniffed is None:
        return _Checked(upload, None, readable=False)
    try:
        sniffed, probed = examine(upload.path, upload.filename, sniffed, Limits.of(settings),
                                  decode=False)
    except Rejected:
        return _Checked(upload, sniffed, readable=False)
    if probed is None:
        return _Checked(upload, sniffed, readable=True)
    return _Checked(upload, sniffed, readable=True, work=probed.work_seconds(), transcoded=True)


def _quota_check(call: Call, upload: UploadedFile, codes: _Codes) -> Callable[[], None]:
    """The monthly quota check, run by the queue under the member's quota lock, in the
    transaction that inserts the ticket."""
    user = call.require_user()

    def admit() -> None:
        used, _seconds = month_usage(user, call.now())
        if not user.is_pro and used + upload.size > call.ctx.settings.monthly_upload_bytes:
            raise codes.quota()

    return admit


def _finish(call: Call, ticket: Ticket, checked: _Checked, wait: bool) -> dict[str, Any]:
    """The ticket answer; with async=0 only once the ticket is done or the bounded wait ends
    (a video or sound is transcoded by the worker, never in the request's thread)."""
    if wait:
        call.ctx.uploads.wait(ticket.id, call.ctx.settings.upload_wait_seconds,
                              process=not checked.transcoded)
    return {"ticket": Text(ticket_label(ticket))}


@group.method(
    "upload.file", title="Upload a new file.", token=True, sign=True, post=True, safety=True,
    perms=WRITE, invalid=InvalidParameter, atomic=False,  # the queue writes in its own transactions
    errors=(FileMissing, FileTooBig, FileRefused, QuotaExceeded),
    response="<ticket>12345445</ticket>")
def upload_file(
        call: Call,
        file: Annotated[str, "The file, as a multipart/form-data part named file with a "
                             "filename (not signed). Required. A text field named file (a "
                             "local path) is signed and ignored."] = "",
        title: Annotated[str, "The document title."] = "",
        description: Annotated[str, "The document description."] = "",
        created_at: Annotated[str, "When the document was created, YYYY-MM-DD HH:MM:SS "
                                   "(overrides EXIF)."] = "",
        license: Annotated[int | None, f"License code: {codes_in_words()}."] = None,
        is_public: IsPublic = None, is_family: IsFamily = None, is_friend: IsFriend = None,
        safety: Safety = None,
        keywords: Annotated[str, 'Comma-separated keywords; quote multi-word ones: '
                                 '"blue sky",sunset.'] = "",
        album_id: Annotated[int | None, "Add the document to this album of yours."] = None,
        member_ids: Annotated[str, "Comma-separated user ids (or usernames) to tag as "
                                   "members."] = "",
        perm_comment: Annotated[int | None, "Who may comment: 0 only you … 5 everybody."] = None,
        perm_tag: Annotated[int | None, "Who may add tags: 0 only you … 5 everybody."] = None,
        perm_tagme: Annotated[int | None, "Who may tag people: 0 only you … 5 "
                                          "everybody."] = None,
        lng: Annotated[float | None, "Longitude (overrides EXIF); -999 with lat=-999 means no "
                                     "geolocation."] = None,
        lat: Annotated[float | None, "Latitude (overrides EXIF); -999 with lng=-999 means no "
                                     "geolocation."] = None,
        dir: Annotated[int | None, "Orientation: 1 up, 3 180°, 6 and 8 a quarter turn "
                                   "(overrides EXIF)."] = None,
        async_: Annotated[bool, "1 (default) answer at once; 0 wait until the document is "
                                "made."] = True) -> dict[str, Any]:
    """Upload a new file; it is processed in the background and the answer is a ticket to poll
    with upload.checkTickets."""
    checked = _checked_file(call, _FILE_CODES)
    upload = checked.upload
    admit = _quota_check(call, upload, _FILE_CODES)
    admit()  # answer over-quota before anything else; enqueue checks again under the lock
    if not checked.readable:
        raise FileRefused()
    options: dict[str, Any] = {"title": title[:255], "description": description,
                               "work": checked.work}
    options |= {name: value for name, value in (
        ("is_public", is_public), ("is_family", is_family), ("is_friend", is_friend),
        ("license", _one_of(license, LICENSE_CODES)), ("safety", _one_of(safety, SAFETY_LEVELS)),
        ("perm_comment", _one_of(perm_comment, PERM_LEVELS)),
        ("perm_tag", _one_of(perm_tag, PERM_LEVELS)),
        ("perm_tagme", _one_of(perm_tagme, PERM_LEVELS)), ("dir", _one_of(dir, DIRECTIONS)),
        ("created", _created(created_at)), ("geo", _geo(lat, lng)),
        ("album_id", _own_album(call, album_id)),
    ) if value is not None}
    options["keywords"] = parse_keywords(keywords)
    members, unknown = find_members(member_ids.split(","))
    if unknown:
        raise InvalidParameter("unknown member")
    options["member_ids"] = [user.id for user in members]
    ticket = _enqueue(call, upload=upload, options=options, admit=admit)
    return _finish(call, ticket, checked, wait=not async_)


def _enqueue(call: Call, **ticket: Any) -> Ticket:
    """Queue the upload as the caller's; 503 (retry later) when the store where uploads wait
    cannot be reached (S3 down): nothing was queued."""
    try:
        return call.ctx.uploads.enqueue(user=call.require_user(),
                                        api_key=call.require_key().key, **ticket)
    except StorageUnavailable as error:
        log.warning("upload not queued, storage unavailable: %s", error)
        raise ServiceUnavailable() from error


def _one_of(value: int | None, allowed: Any) -> int | None:
    if value is not None and value not in allowed:
        raise InvalidParameter("value out of range")
    return value


def _created(value: str) -> str | None:
    """``YYYY-MM-DD HH:MM:SS`` (a bare date means midnight), checked to be a real date."""
    if not value:
        return None
    for pattern in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(value.strip(), pattern).strftime("%Y-%m-%d %H:%M:%S")
        except ValueError:
            continue
    raise InvalidParameter("created_at")


def _geo(lat: float | None, lng: float | None) -> list[float] | str | None:
    """[lat, lng], NO_GEO for the -999 pair, None when neither was sent (EXIF decides)."""
    if lat is None and lng is None:
        return None
    if NO_POSITION in (lat, lng):
        return NO_GEO
    if lat is None or lng is None or not (-90 <= lat <= 90 and -180 <= lng <= 180):
        raise InvalidParameter("lat/lng")
    return [lat, lng]


def _own_album(call: Call, album_id: int | None) -> int | None:
    if album_id is None:
        return None
    if not Album.select().where(Album.id == album_id, Album.owner == call.require_user()).exists():
        raise InvalidParameter("album_id")
    return album_id


@group.method(
    "upload.replace", title="Replace a file.", token=True, sign=True, post=True, perms=WRITE,
    invalid=ReplaceDocNotFound, atomic=False,
    errors=(ReplaceFileMissing, ReplaceFileTooBig, ReplaceQuotaExceeded, MediaDiffers),
    response="<ticket>12345445-98829</ticket>")
def upload_replace(
        call: Call,
        file: Annotated[str, "The new file, as a multipart/form-data part named file with a "
                             "filename (not signed). Required. A text field named file (a "
                             "local path) is signed and ignored."] = "",
        doc_id: Annotated[int | None, "The document whose file is replaced."] = None,
        async_: Annotated[bool, "1 (default) answer at once; 0 wait until the file is "
                                "replaced."] = True) -> dict[str, Any]:
    """Replace a document's file with one of the same media type; the title, tags and other
    metadata stay, the media URLs change."""
    if not doc_id:
        raise ReplaceDocNotFound()
    doc = owned_doc(call, doc_id, ReplaceDocNotFound)
    checked = _checked_file(call, _REPLACE_CODES, media_hint=doc.media)
    upload, sniffed = checked.upload, checked.sniffed
    admit = _quota_check(call, upload, _REPLACE_CODES)
    admit()  # as upload.file: early for a clear answer, again under the quota lock
    if sniffed is not None and sniffed.media != doc.media:
        raise MediaDiffers()
    ticket = _enqueue(call, upload=upload, options={"work": checked.work}, replace_doc=doc,
                      admit=admit)
    return _finish(call, ticket, checked, wait=not async_)


@group.method(
    "upload.checkTickets", title="Check the status of one or more upload tickets.", token=True,
    sign=True, perms=WRITE, missing=TicketsNotFound, errors=(TooManyTickets,),
    response='<tickets count="2" done="1" invalid="0" left="1" eta="1">\n'
             '  <ticket id="712218" done="1" invalid="0" doc_id="5412" eta="0"/>\n'
             '  <ticket id="712311" done="0" invalid="0" eta="1"/>\n</tickets>')
def check_tickets(call: Call, tickets: Annotated[str, "Comma-separated tickets, at most "
                                                      f"{MAX_TICKETS}."]) -> dict[str, Any]:
    """The state of your upload tickets: done (with the doc_id), invalid (processing failed) or
    still waiting (eta in seconds)."""
    labels = list(dict.fromkeys(t.strip() for t in tickets.split(",") if t.strip()))
    if not labels:
        raise TicketsNotFound()
    if len(labels) > MAX_TICKETS:
        raise TooManyTickets()
    wanted: dict[str, tuple[int, int | None]] = {}
    for label in labels:
        match = _TICKET.fullmatch(label)
        ticket_id = as_id(match[1]) if match else None
        if match is None or ticket_id is None:
            raise TicketsNotFound()
        wanted[label] = (ticket_id, as_id(match[2]) if match[2] else None)
    rows = {row.id: row for row in UploadTicket.select().where(
        UploadTicket.id.in_([ticket_id for ticket_id, _ in wanted.values()]),
        UploadTicket.user == call.require_user())}
    items = []
    for label, (ticket_id, replaced) in wanted.items():
        row = rows.get(ticket_id)
        if row is None or replaced not in (None, row.replace_doc_id):
            raise TicketsNotFound()
        items.append(_ticket_tree(label, row, call.now(), call.ctx.settings.transcode_seconds))
    done = sum(item["done"] for item in items)
    invalid = sum(item["invalid"] for item in items)
    return {"tickets": {"count": len(items), "done": done, "invalid": invalid,
                        "left": len(items) - done - invalid,
                        "eta": max(item["eta"] for item in items), "ticket": items}}


def _ticket_tree(label: str, row: UploadTicket, now: int, budget: int) -> dict[str, Any]:
    done = row.state == DONE
    return {"id": label, "done": int(done), "invalid": int(row.state == FAILED),
            "doc_id": row.doc_id if done else None, "eta": _eta(row, now, budget)}


def _eta(row: UploadTicket, now: int, budget: int) -> int:
    """Seconds until a pending ticket should be done: the work its upload estimated (a video's
    transcoding, from its duration and size, at most the transcoding budget) less what has run
    of it, never below PENDING_ETA; 0 once it ended."""
    if row.state not in (QUEUED, WORKING):
        return 0
    try:
        work = int(json.loads(row.params).get("work") or 0)
    except (ValueError, TypeError, AttributeError):
        work = 0
    work = min(work, budget)
    if row.state == WORKING and row.started_at:
        work -= now - row.started_at
    return max(PENDING_ETA, work)
