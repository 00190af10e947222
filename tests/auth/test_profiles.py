"""Member profiles, the profile settings page with the icon upload, and contacts (issue 13 items
1 and 2) through the TestClient: what a profile shows to whom, CSRF refusals, icon validation and
replacement, contact add/change/remove and the family/friend rules they feed, user.get's icon and
location."""

from __future__ import annotations

import io
import re
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from PIL import Image

from api.config import Settings
from api.media import icons
from api.media.icons import store_icon
from api.media.names import ICON_SIZES, icon_names, is_thumbnail, shown
from api.media.storage import LocalStorage, StorageUnavailable
from api.models.docs import Album, AlbumDoc, Relation
from api.web import profiles
from keys import store
from keys.models import User
from tests.auth.conftest import Browser, csrf_of
from tests.conftest import _multipart
from tests.docs.conftest import count_queries, make_doc  # noqa: F401 (fixtures)

YEAR = "max-age=31536000"


def picture(size: tuple[int, int] = (300, 200), fmt: str = "PNG",
            color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A small picture in ``fmt``; its left half red, the right half blue (a crop shows)."""
    image = Image.new("RGB", size, color)
    image.paste((20, 40, 220), (size[0] // 2, 0, size[0], size[1]))
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def decoded(data: bytes) -> Image.Image:
    """The picture ``data`` holds, fully decoded (a broken one raises)."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def logged_in(client: Any, username: str, password: str, addr: str = "10.0.0.1") -> Browser:
    browser = Browser(client, addr)
    assert browser.login(username, password).status_code == 303
    return browser


def upload_icon(browser: Browser, data: bytes, *, token: str | None = None,
                filename: str = "me.png") -> Any:
    """Send the icon form as a browser does (multipart, the CSRF token first)."""
    if token is None:
        token = csrf_of(browser.get("/settings/profile").text)
    content_type, body = _multipart({"csrf_token": token}, {"icon": (filename, data)})
    return browser._keep(browser.client.simulate_post(
        "/settings/icon", body=body, headers={"Content-Type": content_type},
        cookies=browser.cookies, remote_addr=browser.addr))


def icon_files(settings: Settings) -> list[str]:
    folder = Path(settings.data_dir) / "media" / "icons"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def contact(browser: Browser, alias: str, **form: str) -> Any:
    token = csrf_of(browser.get(f"/home/{alias}").text)
    return browser.post(f"/home/{alias}/contact", {"csrf_token": token, **form})


@pytest.fixture
def third(ctx):
    return store.add_user("third", "third-password", realname="Third One")


# -- the profile page ---------------------------------------------------------------------------


@pytest.fixture
def shelf(owner, make_doc):  # noqa: F811
    """The owner's docs at each share level, and a public album whose cover is the public one."""
    docs = {"public": make_doc(owner, title="Sunny beach"),
            "private": make_doc(owner, title="Secret diary", is_public=False),
            "friends": make_doc(owner, title="Friends party", is_public=False, is_friend=True),
            "family": make_doc(owner, title="Family dinner", is_public=False, is_family=True)}
    album = Album.create(owner=owner, title="Holidays", cover=docs["public"])
    AlbumDoc.create(album=album, doc=docs["public"], position=1)
    AlbumDoc.create(album=album, doc=docs["private"], position=2)
    Album.create(owner=owner, title="Hidden album", is_public=False)
    return docs


def shown_titles(html: str) -> set[str]:
    return set(re.findall(r'<span class="caption">([^<(]+?)(?: \(\d+\))?</span>', html))


def test_profile_shows_each_visitor_what_they_may_see(client, owner, member, third, shelf):
    Relation.create(user=owner, contact=member, is_friend=True)
    anonymous = client.simulate_get("/home/owner")
    assert anonymous.status_code == 200
    assert "<h1>Key Owner</h1>" in anonymous.text
    assert 'id="icon" src="http://falconframework.org/media/icons/default.png"' in anonymous.text
    assert shown_titles(anonymous.text) == {"Sunny beach", "Holidays"}
    assert "<strong>1</strong> document<" in anonymous.text  # user.get's count for this visitor
    assert "Log in</a> to add owner" in anonymous.text and 'id="contact"' not in anonymous.text
    # The album counts the docs the visitor may see, and shows the cover's square thumbnail.
    assert "Holidays (1)" in anonymous.text
    assert f"{shelf['public'].id}.{shelf['public'].secret}.75x.jpg" in anonymous.text

    stranger = logged_in(client, "third", "third-password").get("/home/owner").text
    assert shown_titles(stranger) == {"Sunny beach", "Holidays"}
    friend = logged_in(client, "member", "member-password").get("/home/owner").text
    assert shown_titles(friend) == {"Sunny beach", "Friends party", "Holidays"}
    assert "<strong>2</strong> documents" in friend
    mine = logged_in(client, "owner", "owner-password").get("/home/owner").text
    assert shown_titles(mine) == {"Sunny beach", "Secret diary", "Friends party",
                                  "Family dinner", "Holidays", "Hidden album"}
    assert 'href="/settings/profile"' in mine and 'id="contact"' not in mine
    for page in (anonymous.text, stranger, friend):
        assert "Secret diary" not in page and shelf["private"].secret not in page
        assert "Hidden album" not in page


def test_profile_answers_with_images_allowed_and_no_caching(client, owner):
    answer = client.simulate_get("/home/owner")
    policy = answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "img-src 'self'" in policy
    assert "script-src" not in policy and answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-frame-options"] == "DENY"


def test_unknown_and_closed_members(client, owner, member):
    unknown = client.simulate_get("/home/nobody")
    assert unknown.status_code == 404 and "There is no member of that name." in unknown.text
    User.update(status="closed").where(User.id == member.id).execute()
    closed = client.simulate_get("/home/member")
    assert closed.status_code == 410 and "member has closed their account." in closed.text
    assert "A Member" not in closed.text
    # An id names a member too (spec §10.4: aliases and ids alike).
    assert "<h1>Key Owner</h1>" in client.simulate_get(f"/home/{owner.id}").text
    assert client.simulate_get("/home/" + "x" * 5000).status_code == 404
    assert client.simulate_post("/home/owner").status_code == 405


def test_profile_queries_do_not_grow_with_docs_and_albums(client, owner, make_doc,  # noqa: F811
                                                          count_queries):  # noqa: F811
    def queries() -> int:
        with count_queries() as log:
            assert client.simulate_get("/home/owner").status_code == 200
        return len(log)

    def add(n: int) -> None:
        album = Album.create(owner=owner, title=f"Album {n}")
        AlbumDoc.create(album=album, doc=make_doc(owner), position=1)

    add(0)
    few = queries()
    for n in range(12):
        add(n + 1)
    assert queries() == few


# -- contacts -----------------------------------------------------------------------------------


def test_add_change_and_remove_a_contact(client, call, owner, member, make_doc,  # noqa: F811
                                         token_for):
    friends_doc = make_doc(owner, title="Friends only", is_public=False, is_friend=True)
    family_doc = make_doc(owner, title="Family only", is_public=False, is_family=True)
    owner_browser = logged_in(client, "owner", "owner-password")
    page = owner_browser.get("/home/member").text
    assert "member is not one of your contacts." in page and "Add as contact" in page

    done = contact(owner_browser, "member", action="save", friend="1")
    assert done.status_code == 303 and done.headers["location"] == "/home/member"
    row = Relation.get(Relation.user == owner.id, Relation.contact == member.id)
    assert (row.is_friend, row.is_family) == (True, False)
    assert "one of your contacts, as a friend." in owner_browser.get("/home/member").text
    # The member now sees the owner's friends-only doc, not the family one.
    token = token_for(member, doc="read")
    assert call("doc.get", doc_id=friends_doc.id, token=token)["api"]["status"] == "ok"
    assert call("doc.get", doc_id=family_doc.id, token=token)["api"]["status"] == "error"
    seen = call("user.get", user_id="owner", token=token_for(member))["user"]["relation"]
    assert (seen["revcontact"], seen["revfriend"], seen["iscontact"]) == ("1", "1", "0")
    assert "owner counts you among their contacts." in logged_in(
        client, "member", "member-password", "10.0.0.2").get("/home/owner").text

    contact(owner_browser, "member", action="save", family="1")
    row = Relation.get(Relation.user == owner.id, Relation.contact == member.id)
    assert (row.is_friend, row.is_family) == (False, True)
    assert call("doc.get", doc_id=friends_doc.id, token=token)["api"]["status"] == "error"
    assert call("doc.get", doc_id=family_doc.id, token=token)["api"]["status"] == "ok"

    contact(owner_browser, "member", action="save")  # a plain contact: neither box ticked
    row = Relation.get(Relation.user == owner.id, Relation.contact == member.id)
    assert (row.is_friend, row.is_family) == (False, False)
    assert "member is one of your contacts." in owner_browser.get("/home/member").text

    assert contact(owner_browser, "member", action="remove").status_code == 303
    assert not Relation.select().where(Relation.user == owner.id).exists()
    assert call("doc.get", doc_id=family_doc.id, token=token)["api"]["status"] == "error"
    assert contact(owner_browser, "member", action="remove").status_code == 303  # again: fine


def test_contact_form_refusals(client, owner, member):
    owner_browser = logged_in(client, "owner", "owner-password")
    token = csrf_of(owner_browser.get("/home/member").text)
    wrong = owner_browser.post("/home/member/contact", {"csrf_token": "0" * 64,
                                                        "action": "save", "friend": "1"})
    assert wrong.status_code == 403 and "did not come from this site" in wrong.text
    missing = owner_browser.post("/home/member/contact", {"action": "save"})
    assert missing.status_code == 403
    # Another browser's token (a forged form) is refused too.
    other = logged_in(client, "member", "member-password", "10.0.0.2")
    forged = other.post("/home/owner/contact", {"csrf_token": token, "action": "save"})
    assert forged.status_code == 403
    anonymous = Browser(client, "10.0.0.3").post("/home/member/contact",
                                                 {"csrf_token": token, "action": "save"})
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    self_contact = owner_browser.post("/home/owner/contact", {"csrf_token": token,
                                                              "action": "save"})
    assert self_contact.status_code == 400 and "yourself" in self_contact.text
    unknown = owner_browser.post("/home/nobody/contact", {"csrf_token": token, "action": "save"})
    assert unknown.status_code == 404
    junk = owner_browser.post("/home/member/contact", {"csrf_token": token, "action": "befriend"})
    assert junk.status_code == 400
    assert owner_browser.get("/home/member/contact").status_code == 405
    assert not Relation.select().exists()

    User.update(status="closed").where(User.id == member.id).execute()
    closed = owner_browser.post("/home/member/contact", {"csrf_token": token, "action": "save"})
    assert closed.status_code == 400 and "closed their account" in closed.text
    assert not Relation.select().exists()


def test_two_saves_at_once_leave_one_row(client, owner, member):
    browsers = [logged_in(client, "owner", "owner-password", f"10.0.1.{n}") for n in (1, 2)]
    tokens = [csrf_of(b.get("/home/member").text) for b in browsers]
    start = threading.Barrier(2)
    statuses: list[int] = []

    def save(browser: Browser, token: str, box: str) -> None:
        start.wait()
        statuses.append(browser.post("/home/member/contact",
                                     {"csrf_token": token, "action": "save", box: "1"}
                                     ).status_code)

    threads = [threading.Thread(target=save, args=(b, t, box))
               for b, t, box in zip(browsers, tokens, ("friend", "family"), strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [303, 303]
    rows = list(Relation.select().where(Relation.user == owner.id))
    assert len(rows) == 1 and rows[0].is_friend != rows[0].is_family  # one save's marks


# -- icons --------------------------------------------------------------------------------------


def fetched_icon(client: Any, url: str) -> tuple[Any, Image.Image]:
    answer = client.simulate_get(urlsplit(url).path)
    assert answer.status_code == 200, url
    return answer, decoded(answer.content)


def test_user_get_icon_answers_with_an_image_with_and_without_an_upload(client, call, owner,
                                                                        member, token_for,
                                                                        settings):
    before = call("user.get", user_id="member")["user"]["icon"]
    answer, image = fetched_icon(client, before)
    assert urlsplit(before).path == "/media/icons/default.png" and image.format == "PNG"
    assert YEAR in answer.headers["cache-control"]

    browser = logged_in(client, "member", "member-password")
    done = upload_icon(browser, picture((300, 200)))
    assert done.status_code == 303 and done.headers["location"] == "/settings/profile"
    secret = User.get_by_id(member.id).icon_secret
    assert re.fullmatch(r"[0-9a-f]{16}", secret)
    after = call("user.get", user_id="member", token=token_for(owner))["user"]["icon"]
    assert urlsplit(after).path == f"/media/icons/{member.id}.{secret}.100.jpg"
    answer, image = fetched_icon(client, after)
    assert (image.format, image.size) == ("JPEG", (100, 100))
    assert answer.headers["content-type"] == "image/jpeg"
    assert {"public", YEAR, "immutable"} <= set(answer.headers["cache-control"].split(", "))
    # The centred square of a red-left, blue-right picture: red at the left edge, blue at the right.
    red, blue = image.convert("RGB").getpixel((5, 50)), image.convert("RGB").getpixel((94, 50))
    assert red[0] > 150 > red[2] and blue[2] > 150 > blue[0]
    small = after.replace(".100.jpg", ".48.jpg")
    assert fetched_icon(client, small)[1].size == (48, 48)
    head = client.simulate_head(urlsplit(after).path)
    assert head.status_code == 200 and int(head.headers["content-length"]) > 0
    assert icon_files(settings) == sorted(n.split("/")[1] for n in icon_names(member.id, secret))
    # doc.get's owner and network.getList show the member's own icon too.
    Relation.create(user=owner, contact=member)
    listed = call("network.getList", token=token_for(owner, network="read"))
    assert listed["network"]["user"][0]["icon"] == after
    # Wrong secret, size, or id: a plain 404, never another member's icon.
    path = urlsplit(after).path
    for wrong in (path.replace(secret, "0" * 16), path.replace(".100.", ".75."),
                  path.replace(f"/{member.id}.", f"/{owner.id}."), "/media/icons/../x.jpg",
                  "/media/icons/1.abc.100.jpg"):
        assert client.simulate_get(wrong).status_code == 404, wrong


def test_a_new_icon_replaces_the_old_files(client, member, settings):
    browser = logged_in(client, "member", "member-password")
    upload_icon(browser, picture())
    first = User.get_by_id(member.id).icon_secret
    old_url = f"/media/icons/{member.id}.{first}.100.jpg"
    assert client.simulate_get(old_url).status_code == 200
    upload_icon(browser, picture(fmt="JPEG", color=(10, 200, 10)))
    second = User.get_by_id(member.id).icon_secret
    assert second != first and client.simulate_get(old_url).status_code == 404
    assert icon_files(settings) == sorted(n.split("/")[1] for n in icon_names(member.id, second))
    # Back to the default icon: the files go too.
    page = browser.get("/settings/profile").text
    assert 'id="default-icon"' in page and f"{second}.48.jpg" in page
    done = browser.post("/settings/icon/default", {"csrf_token": csrf_of(page)})
    assert done.status_code == 303 and User.get_by_id(member.id).icon_secret == ""
    assert icon_files(settings) == []
    assert 'id="default-icon"' not in browser.get("/settings/profile").text


def test_two_uploads_at_once_leave_one_icon_and_its_files(client, member, settings):
    browsers = [logged_in(client, "member", "member-password", f"10.0.2.{n}") for n in (1, 2)]
    tokens = [csrf_of(b.get("/settings/profile").text) for b in browsers]
    start = threading.Barrier(2)
    statuses: list[int] = []

    def send(browser: Browser, token: str) -> None:
        start.wait()
        statuses.append(upload_icon(browser, picture(), token=token).status_code)

    threads = [threading.Thread(target=send, args=pair) for pair in zip(browsers, tokens,
                                                                        strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [303, 303]
    secret = User.get_by_id(member.id).icon_secret
    assert icon_files(settings) == sorted(n.split("/")[1] for n in icon_names(member.id, secret))


def bomb() -> bytes:
    """A PNG claiming 30000 x 30000 pixels in a few hundred bytes."""
    image = Image.new("1", (30000, 30000))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(("data", "status", "message"), [
    (b"just some text, not a picture", 400, "This file is not a picture."),
    (picture()[:200], 400, "This picture cannot be used"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, 400, "This picture cannot be used"),
    (b"", 400, "Choose a picture first."),
])
def test_icons_refused_with_a_clear_message(client, member, settings, data, status, message):
    browser = logged_in(client, "member", "member-password")
    answer = upload_icon(browser, data)
    assert answer.status_code == status and message in answer.text
    assert 'id="icon-error"' in answer.text and User.get_by_id(member.id).icon_secret == ""
    assert icon_files(settings) == []


def test_a_bomb_or_a_huge_file_is_refused(client, ctx, member, settings):
    browser = logged_in(client, "member", "member-password")
    ctx.settings = ctx.settings.with_(max_image_pixels=50_000_000)
    answer = upload_icon(browser, bomb())
    assert answer.status_code == 400 and "too many pixels" in answer.text
    ctx.settings = ctx.settings.with_(max_icon_bytes=1000)
    too_big = upload_icon(browser, picture((400, 400), "BMP"))
    assert too_big.status_code == 413
    assert "The picture is larger than 1000 bytes. Choose a smaller one." in too_big.text
    assert User.get_by_id(member.id).icon_secret == "" and icon_files(settings) == []
    assert "at most 1000 bytes" in browser.get("/settings/profile").text
    # A body within the form's allowance whose file part alone is over the limit.
    ctx.settings = ctx.settings.with_(max_icon_bytes=100_000)
    over = upload_icon(browser, picture((200, 200), "BMP"))  # 120 KB
    assert over.status_code == 413 and "larger than 97.7 KB" in over.text
    ctx.settings = ctx.settings.with_(max_icon_bytes=10 * 1024 * 1024)
    assert "at most 10 MB" in browser.get("/settings/profile").text


def test_logs_name_an_icon_by_its_member_never_its_secret():
    name = icon_names(7, "0123456789abcdef")[1]
    assert shown(name) == "icon of member 7" and is_thumbnail(name)  # one request to remove


def test_max_icon_bytes_setting():
    assert Settings().max_icon_bytes == 10 * 1024 * 1024
    assert Settings.from_env({"API_MAX_ICON_BYTES": "2048"}).max_icon_bytes == 2048


def test_icon_form_refusals(client, member, settings):
    browser = logged_in(client, "member", "member-password")
    forged = upload_icon(browser, picture(), token="0" * 64)
    assert forged.status_code == 403
    anonymous = upload_icon(Browser(client, "10.0.0.9"), picture(), token="x")
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    content_type, body = _multipart({"csrf_token": csrf_of(browser.get("/settings/profile").text)},
                                    {"other": ("x.png", picture())})
    stray = browser.client.simulate_post("/settings/icon", body=body, cookies=browser.cookies,
                                         headers={"Content-Type": content_type})
    assert stray.status_code == 400
    broken = browser.client.simulate_post("/settings/icon", body=b"--nope\r\n",
                                          cookies=browser.cookies, headers={
                                              "Content-Type": "multipart/form-data; boundary=x"})
    assert broken.status_code == 400 and "could not be read" in broken.text
    assert User.get_by_id(member.id).icon_secret == "" and icon_files(settings) == []
    assert browser.get("/settings/icon").status_code == 303


class FailingSecondPut(LocalStorage):
    """A store whose second write fails, as an object store that goes away midway."""

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.puts = 0

    def put(self, name: str, source: Any) -> None:
        self.puts += 1
        if self.puts == 2:
            raise StorageUnavailable("object storage unreachable")
        super().put(name, source)


def test_a_store_failing_midway_leaves_nothing_half_written(member, settings):
    storage = FailingSecondPut(Path(settings.data_dir) / "media")
    icons = [(size, picture((size, size))) for size in ICON_SIZES]
    with pytest.raises(StorageUnavailable):
        store_icon(storage, member.id, icons, new_secret=lambda n: "ab" * n, now=1)
    assert User.get_by_id(member.id).icon_secret == "" and icon_files(settings) == []


# -- settings: names and place ------------------------------------------------------------------


def test_settings_edit_name_town_and_country(client, call, member):
    browser = logged_in(client, "member", "member-password")
    assert Browser(client, "10.0.0.9").get("/settings/profile").status_code == 303
    page = browser.get("/settings/profile")
    assert page.status_code == 200 and 'value="A Member"' in page.text
    done = browser.post("/settings/profile", {"csrf_token": csrf_of(page.text),
                                              "realname": " Ada Member ", "town": "Smallville",
                                              "country": "Kansas"})
    assert done.status_code == 303
    user = call("user.get", user_id="member")["user"]
    assert user["realname"] == "Ada Member"
    assert user["location"] == {"country": "Kansas", "town": "Smallville"}
    profile = client.simulate_get("/home/member").text
    assert "<h1>Ada Member</h1>" in profile and "Smallville, Kansas" in profile


@pytest.mark.parametrize(("field", "value", "message"), [
    ("realname", "x" * 129, "Real name: at most 128 characters."),
    ("town", "t" * 65, "Town: at most 64 characters."),
    ("country", "line\nbreak", "Country: no line breaks or control characters."),
])
def test_settings_fields_are_bounded(client, member, field, value, message):
    browser = logged_in(client, "member", "member-password")
    token = csrf_of(browser.get("/settings/profile").text)
    answer = browser.post("/settings/profile", {"csrf_token": token, field: value})
    assert answer.status_code == 400 and message in answer.text
    assert User.get_by_id(member.id).realname == "A Member"
    forged = browser.post("/settings/profile", {"csrf_token": "f" * 64, "realname": "Eve"})
    assert forged.status_code == 403 and User.get_by_id(member.id).realname == "A Member"


# -- review findings: decoding bound, counts, closed contacts, names ----------------------------


def test_icon_decodes_take_the_upload_slots_and_never_pile_up(client, ctx, member, monkeypatch):
    """Icons decode in the slots uploads take (at most two at once in the process, whatever
    asks); one that cannot get a slot in time is a 503 with Retry-After, never a queue."""
    running, peak = [0], [0]
    lock = threading.Lock()
    real = icons.render_squares

    def counted(*args: Any) -> Any:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.15)
        try:
            return list(real(*args))
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(icons, "render_squares", counted)
    browsers = [logged_in(client, "member", "member-password", f"10.0.3.{n}") for n in range(6)]
    tokens = [csrf_of(b.get("/settings/profile").text) for b in browsers]
    start = threading.Barrier(len(browsers))
    statuses: list[int] = []

    def send(browser: Browser, token: str) -> None:
        start.wait()
        statuses.append(upload_icon(browser, picture(), token=token).status_code)

    threads = [threading.Thread(target=send, args=pair)
               for pair in zip(browsers, tokens, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [303] * 6 and peak[0] == 2

    # Both slots held (two uploads decoding): an icon waits DECODE_WAIT_SECONDS, then a 503.
    monkeypatch.setattr(profiles, "DECODE_WAIT_SECONDS", 0.2)
    with ctx.uploads.decoding(1), ctx.uploads.decoding(1):
        busy = upload_icon(browsers[0], picture(), token=tokens[0])
    assert busy.status_code == 503 and busy.headers["retry-after"]
    assert "Many pictures are being processed right now" in busy.text
    assert upload_icon(browsers[0], picture(), token=tokens[0]).status_code == 303


def test_an_icon_over_40_megapixels_is_refused_before_decoding(client, member, settings):
    browser = logged_in(client, "member", "member-password")
    assert "at most 10 MB and 40 million pixels" in browser.get("/settings/profile").text
    out = io.BytesIO()
    Image.new("1", (7000, 6000)).save(out, "PNG")  # 42 MP in 5 KB: fine for an upload
    answer = upload_icon(browser, out.getvalue())
    assert answer.status_code == 400
    assert "This picture cannot be used (image has too many pixels)" in answer.text
    assert User.get_by_id(member.id).icon_secret == "" and icon_files(settings) == []


def test_a_big_jpeg_icon_is_decoded_reduced(client, member, monkeypatch):
    sizes: list[tuple[int, int]] = []
    real = icons.render_squares

    def seen(image: Image.Image, *args: Any) -> Any:
        sizes.append(image.size)  # drafted already: the size it will be decoded at
        return real(image, *args)

    monkeypatch.setattr(icons, "render_squares", seen)
    browser = logged_in(client, "member", "member-password")
    assert upload_icon(browser, picture((4000, 3000), "JPEG")).status_code == 303
    assert sizes == [(500, 375)]  # 1/8 scale: both sides still past twice the largest icon


def test_counts_are_what_the_visitor_is_shown_by_default(client, call, owner, member, make_doc,  # noqa: F811
                                                         token_for):
    """Moderate and adult docs are left out of the counts as out of the lists (safesurf 1 by
    default); the owner counts all of theirs."""
    public = make_doc(owner, title="All audiences")
    moderate = make_doc(owner, title="Moderate", safety=2)
    make_doc(owner, title="Adult", safety=3)
    album = Album.create(owner=owner, title="Mixed")
    AlbumDoc.create(album=album, doc=public, position=1)
    AlbumDoc.create(album=album, doc=moderate, position=2)
    anonymous = client.simulate_get("/home/owner").text
    assert "<strong>1</strong> document<" in anonymous and "Mixed (1)" in anonymous
    assert shown_titles(anonymous) == {"All audiences", "Mixed"}
    assert call("user.get", user_id="owner")["user"]["count"]["docs"] == "1"
    assert call("user.get", user_id="owner",
                token=token_for(member, doc="read"))["user"]["count"]["docs"] == "1"
    mine = logged_in(client, "owner", "owner-password").get("/home/owner").text
    assert "<strong>3</strong> documents" in mine and "Mixed (2)" in mine
    assert call("user.get", token=token_for(owner, doc="read"))["user"]["count"]["docs"] == "3"


def test_a_closed_contact_can_still_be_removed(client, owner, member, third):
    Relation.create(user=owner, contact=member, is_friend=True)
    User.update(status="closed").where(User.id == member.id).execute()
    browser = logged_in(client, "owner", "owner-password")
    page = browser.get("/home/member")
    assert page.status_code == 410 and "member has closed their account." in page.text
    assert 'id="remove-contact"' in page.text and "A Member" not in page.text
    forged = browser.post("/home/member/contact", {"csrf_token": "0" * 64, "action": "remove"})
    assert forged.status_code == 403 and Relation.select().exists()
    done = browser.post("/home/member/contact", {"csrf_token": csrf_of(page.text),
                                                 "action": "remove"})
    assert done.status_code == 303 and not Relation.select().exists()
    after = browser.get("/home/member")
    assert after.status_code == 410 and 'id="remove-contact"' not in after.text
    # Nobody else is offered a form: not a member who is no contact, not a visitor.
    other = logged_in(client, "third", "third-password", "10.0.0.5").get("/home/member")
    assert other.status_code == 410 and 'id="contact"' not in other.text
    assert 'id="contact"' not in client.simulate_get("/home/member").text


def test_icon_form_text_over_its_allowance_says_so(client, member):
    browser = logged_in(client, "member", "member-password")
    token = csrf_of(browser.get("/settings/profile").text)
    content_type, body = _multipart({"csrf_token": token, "note": "a" * 70_000},
                                    {"icon": ("me.png", picture())})
    answer = browser.client.simulate_post("/settings/icon", body=body, cookies=browser.cookies,
                                          headers={"Content-Type": content_type})
    assert answer.status_code == 413 and "text fields hold more than 64 KB" in answer.text
    assert "larger than" not in answer.text


def test_icon_names_are_canonical(client, member):
    browser = logged_in(client, "member", "member-password")
    upload_icon(browser, picture())
    secret = User.get_by_id(member.id).icon_secret
    assert client.simulate_get(f"/media/icons/{member.id}.{secret}.48.jpg").status_code == 200
    for name in (f"000{member.id}.{secret}.48.jpg", f"{member.id}.{secret}.048.jpg"):
        assert client.simulate_get(f"/media/icons/{name}").status_code == 404, name


@pytest.mark.parametrize("value", ["a\x85b", "Eve\u202eevil", "a\u2066b\u2069", "a\x9fb",
                                   "Ann\u2028Bob", "Ann\u2029Bob", "Eve\u200fx", "a\u061cb",
                                   "A\u200bnn", "An\ufeffn"])
def test_settings_refuse_c1_controls_and_bidi_overrides(client, member, value):
    browser = logged_in(client, "member", "member-password")
    token = csrf_of(browser.get("/settings/profile").text)
    answer = browser.post("/settings/profile", {"csrf_token": token, "realname": value})
    assert answer.status_code == 400
    assert "Real name: no line breaks or control characters." in answer.text
    assert User.get_by_id(member.id).realname == "A Member"


def test_settings_keep_the_joiners_names_need(client, member):
    browser = logged_in(client, "member", "member-password")
    token = csrf_of(browser.get("/settings/profile").text)
    name = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # Persian, with a ZWNJ
    answer = browser.post("/settings/profile", {"csrf_token": token, "realname": name})
    assert answer.status_code == 303
    assert User.get_by_id(member.id).realname == name
