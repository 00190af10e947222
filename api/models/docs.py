"""Documents and what hangs off them: thumbnails, tags, notes, comments, visits, albums, relations,
and the upload-ticket queue (spec §6, §9, §10)."""

from __future__ import annotations

from typing import Any

from peewee import (
    SQL,
    BooleanField,
    CharField,
    Expression,
    FloatField,
    ForeignKeyField,
    IntegerField,
    ModelSelect,
    TextField,
)

from keys.db import BaseModel, IdField
from keys.models import User, now

MEDIA_TYPES = ("photo", "video", "audio", "other")
NO_DATE = "0000-00-00 00:00:00"

SAFETY_LEVELS = (1, 2, 3)  # 1 all audiences, 2 not for all audiences, 3 adults only (§10.4)

# The share level (spec §10.4) of a doc or album, from its three flags; the one place that says
# how level and flags map. A public row is 4 whatever its family/friend flags say.
SHARE_LEVELS = (0, 1, 2, 3, 4)  # 0 private, 1 family, 2 friends, 3 friends & family, 4 public
PUBLIC_SHARE = 4
_FAMILY_BIT, _FRIEND_BIT = 1, 2


def share_level(is_public: bool, is_family: bool, is_friend: bool) -> int:
    """The share level of a doc's or album's flags."""
    if is_public:
        return PUBLIC_SHARE
    return (_FAMILY_BIT if is_family else 0) + (_FRIEND_BIT if is_friend else 0)


def share_flags(share: int) -> dict[str, bool]:
    """The ``is_public``/``is_family``/``is_friend`` flags that give a share level."""
    public = share == PUBLIC_SHARE
    return {"is_public": public, "is_family": not public and bool(share & _FAMILY_BIT),
            "is_friend": not public and bool(share & _FRIEND_BIT)}


def share_where(model: Any, share: int) -> Expression:
    """A WHERE clause for the ``model`` (Doc or Album) rows at one share level."""
    if share == PUBLIC_SHARE:
        return model.is_public == True  # noqa: E712 (peewee expression)
    flags = share_flags(share)
    return ((model.is_public == False)  # noqa: E712
            & (model.is_family == flags["is_family"])
            & (model.is_friend == flags["is_friend"]))


# Beside each foreign key ``x`` peewee adds ``x_id``, the raw column value; the bare annotations
# (``owner_id: int``) only declare its type for the checker and create nothing.


class Relation(BaseModel):
    """``user`` counts ``contact`` as family and/or friend (filled by the network methods later)."""

    id = IdField()
    user = ForeignKeyField(User, backref="+", on_delete="CASCADE")
    user_id: int
    contact = ForeignKeyField(User, backref="+", on_delete="CASCADE")
    contact_id: int
    is_family = BooleanField(default=False)
    is_friend = BooleanField(default=False)

    class Meta:
        table_name = "relations"
        indexes = ((("user", "contact"), True), (("contact", "user"), False))


class Doc(BaseModel):
    """A photo, video, audio or other document with its metadata and sharing settings."""

    id = IdField()
    owner = ForeignKeyField(User, backref="docs", on_delete="CASCADE")
    owner_id: int
    media = CharField(max_length=8, default="photo")
    title = CharField(max_length=255, default="")
    description = TextField(default="")
    created = CharField(max_length=19, default=NO_DATE)  # taken/created, "YYYY-MM-DD HH:MM:SS"
    posted_at = IntegerField(default=now)  # UNIX seconds
    modified_at = IntegerField(default=now)
    is_public = BooleanField(default=True)
    is_family = BooleanField(default=False)
    is_friend = BooleanField(default=False)
    safety = IntegerField(default=1)  # 1 all audiences, 2 not for all, 3 adults only
    license = IntegerField(default=0)
    perm_comment = IntegerField(default=5)
    perm_tag = IntegerField(default=4)
    perm_tagme = IntegerField(default=4)
    lat = FloatField(null=True)
    lng = FloatField(null=True)
    md5 = CharField(max_length=32, default="", index=True)
    secret = CharField(max_length=16)  # unguessable part of every thumbnail file name (§10.2)
    original_secret = CharField(max_length=16)  # a separate one guards the original file
    original_ext = CharField(max_length=8, default="")
    thumbs: ModelSelect[Thumb]  # the backref of Thumb.doc (declared for the checker, as above)
    medias: ModelSelect[Media]  # the backref of Media.doc
    original_mime = CharField(max_length=64, default="")
    original_size = IntegerField(default=0)  # bytes
    width = IntegerField(default=0)
    height = IntegerField(default=0)
    orientation = IntegerField(default=1)  # the `dir` of upload.file: 1, 3, 6, 8
    duration = IntegerField(default=0)  # seconds, video and audio
    exif = TextField(default="")  # JSON object of the metadata read from the file
    camera = CharField(max_length=128, default="")
    visits = IntegerField(default=0)
    comments = IntegerField(default=0)
    faves = IntegerField(default=0)

    class Meta:
        table_name = "docs"
        indexes = (
            (("owner", "posted_at"), False),
            (("is_public", "posted_at"), False),
            (("owner", "created"), False),
            (("created",), False),
            (("lat", "lng"), False),
            # doc.search's sorts over every doc, tie-broken by id as the queries are
            # (migration 7; docs/protocol-choices.md, "Full-text search"):
            (("posted_at", "id"), False),
            (("created", "id"), False),
            (("faves", "visits", "id"), False),
            # a filter newest first; is_public and safety after the unique id only let an
            # anonymous count read the index alone (no effect on the order)
            (("license", "posted_at", "id", "is_public", "safety"), False),
            (("media", "posted_at", "id", "is_public", "safety"), False),
        )

    @property
    def share(self) -> int:
        """0 private, 1 family, 2 friends, 3 friends & family, 4 public (spec §10.4)."""
        return share_level(self.is_public, self.is_family, self.is_friend)


class Thumb(BaseModel):
    """One stored rendition of a doc at a thumbsize label (``75x``, ``100`` … ``2048``)."""

    id = IdField()
    doc = ForeignKeyField(Doc, backref="thumbs", on_delete="CASCADE")
    doc_id: int
    label = CharField(max_length=8)
    w = IntegerField()
    h = IntegerField()
    ext = CharField(max_length=8, default="jpg")

    class Meta:
        table_name = "thumbs"
        indexes = ((("doc", "label"), True),)


class Media(BaseModel):
    """One web rendition of a video or audio doc (``<media label ext w h lenght url/>``, spec
    §10.2): ``ipod``, ``mp4``, ``hd`` (H.264/AAC MP4) or ``mp3``, stored under the doc's
    ``secret`` like its thumbnails (api/media/video.py)."""

    id = IdField()
    doc = ForeignKeyField(Doc, backref="medias", on_delete="CASCADE")
    doc_id: int
    label = CharField(max_length=8)
    ext = CharField(max_length=8)
    width = IntegerField(default=0)
    height = IntegerField(default=0)
    duration = IntegerField(default=0)  # whole seconds, as Doc.duration
    size = IntegerField(default=0)  # bytes

    class Meta:
        table_name = "medias"
        indexes = ((("doc", "label"), True),)


class Tag(BaseModel):
    """A keyword tag or a member tag on a doc."""

    id = IdField()
    doc = ForeignKeyField(Doc, backref="tags", on_delete="CASCADE")
    doc_id: int
    type = CharField(max_length=8, default="keyword")  # keyword | member
    tag = CharField(max_length=255, default="")  # keyword text as given
    norm = CharField(max_length=255, default="", index=True)  # lower-cased, for search
    member = ForeignKeyField(User, null=True, backref="+", on_delete="CASCADE")
    member_id: int | None
    added_by = ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    added_by_id: int | None
    created_at = IntegerField(default=now)

    class Meta:
        table_name = "tags"
        # (norm, type, doc): doc.search's tags read the docs of a keyword from the index alone.
        indexes = ((("doc", "type", "norm"), False), (("norm", "type", "doc"), False))


class Note(BaseModel):
    """A box with text on a photo."""

    id = IdField()
    doc = ForeignKeyField(Doc, backref="notes", on_delete="CASCADE")
    doc_id: int
    author = ForeignKeyField(User, backref="+", on_delete="CASCADE")
    author_id: int
    member = ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    member_id: int | None
    x = IntegerField()
    y = IntegerField()
    w = IntegerField()
    h = IntegerField()
    content = TextField(default="")
    created_at = IntegerField(default=now)

    class Meta:
        table_name = "notes"


class Comment(BaseModel):
    """A comment on a doc; ``parent`` makes it a reply."""

    id = IdField()
    doc = ForeignKeyField(Doc, backref="comment_rows", on_delete="CASCADE")
    doc_id: int
    author = ForeignKeyField(User, backref="+", on_delete="CASCADE")
    author_id: int
    parent = ForeignKeyField("self", null=True, backref="replies", on_delete="CASCADE")
    parent_id: int | None
    content = TextField(default="")
    posted_at = IntegerField(default=now)
    modified_at = IntegerField(default=0)

    class Meta:
        table_name = "comments"
        indexes = ((("doc", "posted_at"), False),)


class DocVisit(BaseModel):
    """The latest authenticated view of a doc by someone other than its owner."""

    id = IdField()
    doc = ForeignKeyField(Doc, on_delete="CASCADE")
    doc_id: int
    visitor = ForeignKeyField(User, backref="+", on_delete="CASCADE")
    visitor_id: int
    visited_at = IntegerField(default=now)
    first_visit_at = IntegerField(default=now)  # doc.getVisitors
    visits = IntegerField(default=1)  # counted views (docs/documents.md: what a visit is)

    class Meta:
        table_name = "doc_visits"
        # (visited_at, doc): explore.docs.getPopular reads the week's visits from the index alone
        # (migration 7; docs/protocol-choices.md, "Tags and explore").
        indexes = ((("doc", "visitor"), True), (("doc", "visited_at"), False),
                   (("visited_at", "doc"), False))


class Album(BaseModel):
    """An ordered set of a member's docs, with a cover."""

    id = IdField()
    owner = ForeignKeyField(User, backref="albums", on_delete="CASCADE")
    owner_id: int
    title = CharField(max_length=255)
    description = TextField(default="")
    cover = ForeignKeyField(Doc, null=True, on_delete="SET NULL")
    cover_id: int | None
    perm_comment = IntegerField(default=5)
    is_public = BooleanField(default=True)
    is_family = BooleanField(default=False)
    is_friend = BooleanField(default=False)
    position = IntegerField(default=0)  # album.orderList
    created_at = IntegerField(default=now)
    modified_at = IntegerField(default=now)
    comment_at = IntegerField(default=0)
    visits = IntegerField(default=0)
    faves = IntegerField(default=0)
    comments = IntegerField(default=0)

    class Meta:
        table_name = "albums"
        indexes = ((("owner", "position"), False),)

    @property
    def share(self) -> int:
        """The album's own share level, as a doc's (``Doc.share``)."""
        return share_level(self.is_public, self.is_family, self.is_friend)


class AlbumDoc(BaseModel):
    """Membership of a doc in an album, with its place in the album's order."""

    id = IdField()
    album = ForeignKeyField(Album, backref="entries", on_delete="CASCADE")
    album_id: int
    doc = ForeignKeyField(Doc, backref="album_entries", on_delete="CASCADE")
    doc_id: int
    position = IntegerField(default=0)
    added_at = IntegerField(default=now)

    class Meta:
        table_name = "album_docs"
        indexes = ((("album", "doc"), True), (("album", "position"), False))


class AlbumVisit(BaseModel):
    """The latest authenticated view of an album by someone other than its owner."""

    id = IdField()
    album = ForeignKeyField(Album, on_delete="CASCADE")
    album_id: int
    visitor = ForeignKeyField(User, backref="+", on_delete="CASCADE")
    visitor_id: int
    visited_at = IntegerField(default=now)
    first_visit_at = IntegerField(default=now)  # album.getVisitors
    visits = IntegerField(default=1)

    class Meta:
        table_name = "album_visits"
        indexes = ((("album", "visitor"), True), (("album", "visited_at"), False))


class UploadTicket(BaseModel):
    """A queued upload (upload.file / upload.replace); kept here so restarts lose nothing."""

    id = IdField()
    user = ForeignKeyField(User, backref="+", on_delete="CASCADE")
    user_id: int
    api_key = CharField(max_length=32)
    replace_doc = ForeignKeyField(Doc, null=True, backref="+", on_delete="CASCADE")
    replace_doc_id: int | None
    state = CharField(max_length=8, default="queued")  # queued | working | done | failed
    doc = ForeignKeyField(Doc, null=True, backref="+", on_delete="SET NULL")
    doc_id: int | None
    params = TextField(default="{}")  # JSON of the upload parameters
    file_path = CharField(max_length=1024, default="")  # the spooled upload awaiting processing
    file_size = IntegerField(default=0)
    filename = CharField(max_length=255, default="")
    created_at = IntegerField(default=now)
    started_at = IntegerField(default=0)
    finished_at = IntegerField(default=0)
    error = CharField(max_length=255, default="")
    # Migration 6 (issue 10), per state (docs/uploads.md, "Leases and recovery"):
    # ``stored_names`` (a JSON list) of a queued or working ticket names the files its attempt
    # will write, committed before any is stored, so recovery can remove what a crash left; of a
    # done or failed one, files no doc refers to that are still to be removed (a replacement's
    # old files), emptied once they are gone. ``lease_until`` (UNIX seconds) of a working ticket:
    # until when its worker is known alive (renewed while it works; an older one is re-queued);
    # of a queued one: not claimed before (a back-off); the database's clock (issue 11).
    # ``attempts``: claims so far. ``claim_token`` (issue 11): random, written by each claim; every
    # later write of a working ticket is conditional on it ("" once queued again).
    stored_names = TextField(default="", constraints=[SQL("DEFAULT ''")])
    lease_until = IntegerField(default=0, constraints=[SQL("DEFAULT 0")])
    attempts = IntegerField(default=0, constraints=[SQL("DEFAULT 0")])
    claim_token = CharField(max_length=32, default="", constraints=[SQL("DEFAULT ''")])

    class Meta:
        table_name = "upload_tickets"
        indexes = ((("state", "id"), False), (("user", "id"), False))


# The ended tickets whose files are still to be removed (the worker's check looks them up each
# time): few rows, however many tickets the table keeps.
UploadTicket.add_index(UploadTicket.id, where=UploadTicket.stored_names != "",
                       name="uploadticket_removals")


class DocFave(BaseModel):
    """``user`` faved ``doc`` (faves.docs.*, doc.getFaves); ``Doc.faves`` counts these rows."""

    id = IdField()
    user = ForeignKeyField(User, backref="+", on_delete="CASCADE")
    user_id: int
    doc = ForeignKeyField(Doc, backref="+", on_delete="CASCADE")
    doc_id: int
    faved_at = IntegerField(default=now)

    class Meta:
        table_name = "doc_faves"
        # (faved_at, doc): the week's faves for explore.docs.getPopular, from the index alone
        indexes = ((("user", "doc"), True), (("user", "faved_at"), False),
                   (("doc", "faved_at"), False), (("faved_at", "doc"), False))


class AlbumFave(BaseModel):
    """``user`` faved ``album`` (faves.albums.*, album.getFaves); ``Album.faves`` counts these."""

    id = IdField()
    user = ForeignKeyField(User, backref="+", on_delete="CASCADE")
    user_id: int
    album = ForeignKeyField(Album, backref="+", on_delete="CASCADE")
    album_id: int
    faved_at = IntegerField(default=now)

    class Meta:
        table_name = "album_faves"
        indexes = ((("user", "album"), True), (("user", "faved_at"), False),
                   (("album", "faved_at"), False))


class Folder(BaseModel):
    """A member's named group of albums (folder.*), in the member's order, with a cover doc."""

    id = IdField()
    owner = ForeignKeyField(User, backref="+", on_delete="CASCADE")
    owner_id: int
    title = CharField(max_length=255)
    description = TextField(default="")
    cover = ForeignKeyField(Doc, null=True, backref="+", on_delete="SET NULL")
    cover_id: int | None
    position = IntegerField(default=0)  # folder.orderList
    created_at = IntegerField(default=now)
    modified_at = IntegerField(default=now)

    class Meta:
        table_name = "folders"
        indexes = ((("owner", "position"), False),)


class FolderAlbum(BaseModel):
    """Membership of an album in a folder, with its place in the folder's order."""

    id = IdField()
    folder = ForeignKeyField(Folder, backref="+", on_delete="CASCADE")
    folder_id: int
    album = ForeignKeyField(Album, backref="+", on_delete="CASCADE")
    album_id: int
    position = IntegerField(default=0)
    added_at = IntegerField(default=now)

    class Meta:
        table_name = "folder_albums"
        indexes = ((("folder", "album"), True), (("folder", "position"), False),
                   (("album",), False))


MODELS = (Relation, Doc, Thumb, Media, Tag, Note, Comment, DocVisit, Album, AlbumDoc, AlbumVisit,
          UploadTicket, DocFave, AlbumFave, Folder, FolderAlbum)
