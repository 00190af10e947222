"""Member profiles at ``/home/<alias>``, the profile settings page with the icon upload, and the
contact forms (issue 13).

A profile shows what user.get tells the visitor (names, icon, place, counts and relation, built by
the same api.content.members code, through the visitor's eyes) and the member's latest documents
and albums the visitor may see, by the rules every list follows (``visible_to``, the default
safesurf level), in a fixed number of queries whatever their number. A closed account's profile
says so (410: user.get tells anyone as much), with a form to remove them for a member who still
counts them as a contact; an unknown one is a 404.

``/settings/profile`` edits the logged-in member's real name, town and country (bounded as their
columns), and takes a new icon: a multipart form of at most ``max_icon_bytes``, decoded (in one of
the upload worker's two decoding slots) and cut to centred squares by the upload pipeline's code
(api/media/icons.py), stored through the media storage. Every form carries the pages' CSRF token.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from typing import Any

import falcon
from falcon.media import MultipartFormHandler
from peewee import fn

from api.content.access import find_member, visible_to
from api.content.albums import covers
from api.content.members import counts, has_control_characters, relation, shown_docs
from api.content.trees import pick_thumb, thumbs_by_doc
from api.core.context import Call, Grant
from api.media.icons import IconRefused, drop_icon, icon_max_pixels, make_icons, store_icon
from api.media.imaging import ALWAYS_SQUARE
from api.media.names import ICON_SIZES, icon_url, thumb_url
from api.media.storage import Storage, StorageUnavailable, build_storage
from api.media.worker import DecodesBusy
from api.models.docs import Album, AlbumDoc, Doc, Relation
from api.web import contacts
from api.web.console import ConsolePage
from api.web.home import base_url
from api.web.pages import BadRequest, Pages
from keys.db import as_tuples
from keys.models import User

SETTINGS = "/settings/profile"
ICON_FORM = "/settings/icon"
DEFAULT_ICON_FORM = "/settings/icon/default"
PROFILE_DOCS = 30  # the latest documents a profile shows
PROFILE_ALBUMS = 24  # albums a profile shows, in the member's order
# What the settings form accepts: the columns' widths (keys/models.py User).
FIELD_LIMITS = {"realname": 128, "town": 64, "country": 64}
_FIELD_WORDS = {"realname": "Real name", "town": "Town", "country": "Country"}
_MULTIPART = MultipartFormHandler()
_FIELDS_BYTES = 64 * 1024  # the icon form's text fields together
_STORE_DOWN = "The picture store cannot be reached right now. Please try again in a moment."
# How long an icon waits for a decoding slot (shared with uploads: at most two decodes at once)
# before the member is asked to try again (503): a crowd of uploads never piles up threads.
DECODE_WAIT_SECONDS = 10
_FIELDS_TOO_LARGE = (f"The form's text fields hold more than {_FIELDS_BYTES // 1024} KB. Go "
                     f"back to the settings page and try again.")
_DECODES_BUSY = "Many pictures are being processed right now. Please try again in a moment."


def viewer_call(pages: Pages, req: falcon.Request, viewer: User | None) -> Call:
    """A page view as an API call sees it: the visitor's eyes, as a token granting ``doc:read``
    would (anonymous without a session), so the page shows exactly what the API shows them."""
    grant = Grant(token_id=0, user=viewer, permissions={"doc": "read"}) if viewer else None
    return Call(ctx=pages.ctx, method="", key=None, grant=grant,
                client_addr=req.remote_addr or "", http_method=req.method, params={}, files={},
                base_url=base_url(pages, req))


def allow_images(resp: falcon.Response, pages: Pages) -> None:
    """Widen a rendered page's policy (api.web.pages) to pictures from this site and from
    API_PUBLIC_URL, where media URLs point; everything else stays as the pages' policy has it."""
    sources = " ".join(["'self'", pages.ctx.settings.public_url.rstrip("/")]).strip()
    policy = resp.get_header("Content-Security-Policy") or "default-src 'none'"
    resp.set_header("Content-Security-Policy", f"{policy}; img-src {sources}")


def latest_docs(call: Call, member: User) -> list[dict[str, Any]]:
    """The member's latest documents the visitor may see, with their square thumbnails."""
    viewer = call.user
    docs = list(Doc
                .select()
                .where(Doc.owner == member, shown_docs(viewer))
                .order_by(Doc.posted_at.desc(), Doc.id.desc())
                .limit(PROFILE_DOCS))
    thumbs = thumbs_by_doc(docs)
    items = []
    for doc in docs:
        thumb = pick_thumb(thumbs.get(doc.id, []), ALWAYS_SQUARE)
        items.append({"id": doc.id, "title": doc.title, "media": doc.media,
                      "url": thumb and thumb_url(call.base_url, doc, thumb.label, thumb.ext),
                      "w": thumb and thumb.w, "h": thumb and thumb.h})
    return items


def member_albums(call: Call, member: User) -> list[dict[str, Any]]:
    """The member's albums the visitor may see, with their covers and the number of their
    documents the visitor is shown (``shown_docs``, as the profile's document count)."""
    albums = list(Album
                  .select()
                  .where(Album.owner == member, visible_to(Album, call.user))
                  .order_by(Album.position, Album.id)
                  .limit(PROFILE_ALBUMS))
    shown = covers(call, albums, ALWAYS_SQUARE)
    counted = dict(as_tuples(AlbumDoc
                             .select(AlbumDoc.album, fn.COUNT(Doc.id))
                             .join(Doc)
                             .where(AlbumDoc.album.in_([album.id for album in albums]),
                                    shown_docs(call.user))
                             .group_by(AlbumDoc.album)
                             .tuples())) if albums else {}
    return [{"id": album.id, "title": album.title, "cover": shown.get(album.id),
             "docs": counted.get(album.id, 0)} for album in albums]


class Profile(ConsolePage):
    """``/home/<alias>``: a member's profile, with the contact form for another logged-in
    member."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, alias: str = "") -> None:
        self._guard(lambda req, resp: self.show(req, resp, alias), req, resp)

    def on_post(self, req: falcon.Request, resp: falcon.Response, alias: str = "") -> None:
        self._guard(self.post, req, resp)  # the 405 page

    def show(self, req: falcon.Request, resp: falcon.Response, alias: str) -> None:
        """The profile of ``alias`` (a username, or a member's id)."""
        viewer = self.pages.user(req)
        member = find_member(alias[:64])
        if member is None:
            raise BadRequest(contacts.UNKNOWN_MEMBER, falcon.HTTP_404)
        if not member.is_open:
            return self.closed(req, resp, viewer, member)
        call = viewer_call(self.pages, req, viewer)
        card = {"icon": icon_url(call.base_url, member), "count": counts(member, viewer, viewer),
                "relation": relation(viewer, member) or {}}
        place = ", ".join(part for part in (member.town, member.country) if part)
        self.pages.render(resp, "profile.html", user=viewer, member=member, card=card,
                          title=member.realname or member.username, place=place,
                          docs=latest_docs(call, member), albums=member_albums(call, member),
                          own=viewer is not None and viewer.id == member.id,
                          csrf_token=self.csrf_token(req) if viewer else "",
                          contact_action=contacts.profile_path(member) + "/contact")
        allow_images(resp, self.pages)

    def closed(self, req: falcon.Request, resp: falcon.Response, viewer: User | None,
               member: User) -> None:
        """A closed account's page (410): it says so, and to a member who still counts them as
        a contact it offers to remove them (the only change a closed account allows)."""
        iscontact = viewer is not None and Relation.select().where(
            Relation.user == viewer, Relation.contact == member).exists()
        self.pages.render(resp, "profile_closed.html", status=falcon.HTTP_410, user=viewer,
                          title="Closed account", member=member, iscontact=iscontact,
                          csrf_token=self.csrf_token(req) if iscontact else "",
                          contact_action=contacts.profile_path(member) + "/contact")


class ProfileSettings(ConsolePage):
    """``/settings/profile``: the member's real name, town, country and icon."""

    def __init__(self, pages: Pages, storage: Storage) -> None:
        super().__init__(pages)
        self.storage = storage

    def get(self, req: falcon.Request, resp: falcon.Response) -> None:
        user = self.member(req, resp)
        if user is not None:
            self.show(req, resp, user)

    def show(self, req: falcon.Request, resp: falcon.Response, user: User, *,
             error: str = "", icon_error: str = "", status: str = falcon.HTTP_200,
             form: Mapping[str, str] | None = None, message: str = "") -> None:
        """The settings page; a refused form comes back with its error and what it held."""
        settings = self.pages.ctx.settings
        self.pages.render(resp, "profile_settings.html", status=status, user=user,
                          title="Your profile", error=error, icon_error=icon_error,
                          message=message, limits=FIELD_LIMITS,
                          form=form or {name: getattr(user, name) for name in FIELD_LIMITS},
                          icons=[(size, icon_url(base_url(self.pages, req), user, size))
                                 for size in ICON_SIZES],
                          own_icon=bool(user.icon_secret),
                          max_icon=f"{_size_words(settings.max_icon_bytes)} and "
                                   f"{icon_max_pixels(settings) / 1e6:g} million pixels",
                          csrf_token=self.csrf_token(req))
        allow_images(resp, self.pages)

    def post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The real name, town and country."""
        posted = self.pages.posted(req, resp)
        if posted is None:
            return
        user, form = posted
        values = {name: form.get(name, "").strip() for name in FIELD_LIMITS}
        problems = [problem for name, value in values.items()
                    if (problem := _field_problem(name, value))]
        if problems:
            return self.show(req, resp, user, error=" ".join(problems), form=values,
                             status=falcon.HTTP_400)
        User.update(**values).where(User.id == user.id).execute()
        self.pages.redirect(resp, SETTINGS)


def _field_problem(name: str, value: str) -> str:
    """Why a settings field is refused, or ""."""
    if len(value) > FIELD_LIMITS[name]:
        return f"{_FIELD_WORDS[name]}: at most {FIELD_LIMITS[name]} characters."
    if has_control_characters(value):
        return f"{_FIELD_WORDS[name]}: no line breaks or control characters."
    return ""


def _size_words(size: int) -> str:
    """A byte count as the form says it: 10 MB, 512 KB, 1000 bytes."""
    for unit, name in ((1024 * 1024, "MB"), (1024, "KB")):
        if size >= unit:
            return f"{size / unit:.3g} {name}"
    return f"{size} bytes"


class IconUpload(ProfileSettings):
    """``/settings/icon``: a new icon (multipart form, file field ``icon``)."""

    def get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.pages.redirect(resp, SETTINGS)

    def post(self, req: falcon.Request, resp: falcon.Response) -> None:
        user = self.member(req, resp)  # before reading a body a visitor may not send
        if user is None:
            return
        limit = self.pages.ctx.settings.max_icon_bytes
        too_large = BadRequest(f"The picture is larger than {_size_words(limit)}. Choose a "
                               f"smaller one.", falcon.HTTP_413)
        if (req.content_length or 0) > limit + _FIELDS_BYTES:
            raise too_large
        fields, picture = read_icon_form(req, limit, too_large)
        self.pages.check_csrf(req, fields)
        if not picture:
            return self.show(req, resp, user, icon_error="Choose a picture first.",
                             status=falcon.HTTP_400)
        uploads = self.pages.ctx.uploads
        try:
            # Decoded in one of the slots uploads take: a 503 when none frees in time.
            with uploads.decoding(DECODE_WAIT_SECONDS), tempfile.NamedTemporaryFile(
                    prefix="icon-", dir=uploads.own_spool()) as spooled:
                spooled.write(picture)
                spooled.flush()
                icons = make_icons(spooled.name, self.pages.ctx.settings)
            store_icon(self.storage, user.id, icons, new_secret=self.pages.ctx.new_secret,
                       now=self.pages.now())
        except IconRefused as refused:
            return self.show(req, resp, user, icon_error=str(refused), status=falcon.HTTP_400)
        except StorageUnavailable:
            raise BadRequest(_STORE_DOWN, falcon.HTTP_503) from None
        except DecodesBusy:
            raise BadRequest(_DECODES_BUSY, falcon.HTTP_503) from None  # with Retry-After
        self.pages.redirect(resp, SETTINGS)


class DefaultIcon(ProfileSettings):
    """``/settings/icon/default``: back to the default icon."""

    def get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.pages.redirect(resp, SETTINGS)

    def post(self, req: falcon.Request, resp: falcon.Response) -> None:
        posted = self.pages.posted(req, resp)
        if posted is None:
            return
        drop_icon(self.storage, posted[0].id, now=self.pages.now())
        self.pages.redirect(resp, SETTINGS)


def read_icon_form(req: falcon.Request, limit: int,
                   too_large: BadRequest) -> tuple[dict[str, str], bytes]:
    """The form's text fields and the ``icon`` file part's bytes (empty when no file was
    chosen): at most ``limit`` bytes of file (``too_large`` past it) and _FIELDS_BYTES of fields
    (a 413 of its own); BadRequest for a body that is no readable form."""
    fields: dict[str, str] = {}
    budget = _FIELDS_BYTES
    picture = b""
    try:
        for part in _MULTIPART.deserialize(req.bounded_stream, req.content_type or "",
                                           req.content_length):
            if part.filename is not None:
                if part.name != "icon" or picture:
                    raise BadRequest("The form holds an unexpected file.")
                picture = part.stream.read(limit + 1)
                if len(picture) > limit:
                    raise too_large
                continue
            data = part.stream.read(budget + 1)
            budget -= len(data)
            if budget < 0:
                raise BadRequest(_FIELDS_TOO_LARGE, falcon.HTTP_413)
            fields[part.name or ""] = data.decode("utf-8")
    except (UnicodeDecodeError, falcon.MediaMalformedError, falcon.HTTPBadRequest,
            falcon.MediaNotFoundError):
        raise BadRequest("The form could not be read. Go back and try again.") from None
    return fields, picture


def add_routes(app: falcon.App, pages: Pages) -> None:
    """Mount the profile pages, the settings page and the contact form."""
    storage = build_storage(pages.ctx.settings)  # the media store, as the upload worker's
    app.add_route("/home/{alias}", Profile(pages))
    app.add_route("/home/{alias}/contact", contacts.ContactForm(pages))
    app.add_route(SETTINGS, ProfileSettings(pages, storage))
    app.add_route(ICON_FORM, IconUpload(pages, storage))
    app.add_route(DEFAULT_ICON_FORM, DefaultIcon(pages, storage))
