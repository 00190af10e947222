"""A desktop uploader's whole call sequence against a live waitress server (spec §5.4, §6, §10.5).

The order and the indexing are those of Photini's ipernity uploader (``on_connect``,
``upload_files``, ``set_metadata``, ``set_notes``, ``set_albums``, ``find_photos``,
``merge_metadata``) with PyIpernity's ticket loop: answers are indexed without checking, the way
those clients do (``rsp["albums"]["album"]``, ``tag["tag"]``, ``note["content"]``,
``rsp["user"]["icon"]`` …), so a missing key or a missing empty list breaks the test as it would
break the client.

Parametrized over two members (one who just signed up, one with albums, tagged docs and notes) and
over JSON and PHP (decoded by php-cli's ``unserialize``). Each step that fails is recorded and the
sequence goes on, so one run reports every broken part of the contract; steps later steps depend on
(log-in, upload, ticket) end it.
"""

from __future__ import annotations

import hashlib
import io
import time
from datetime import datetime
from typing import Any

import pytest
from PIL import Image

from tests.clients.conftest import (
    SEARCH_DAY,
    Profile,
    SequenceAborted,
    Steps,
    WireClient,
    approve,
    authorize_link,
)
from tests.upload.conftest import camera_exif, jpeg

# Sent with upload.file, as Photini sends visibility, permissions, licence, metadata, dates and
# location with the file (plus the spec §6.1 fields it leaves to later calls).
UPLOAD = {"async": "1", "title": "Harbour at dusk",
          "description": "Boats & gulls — évening\n\nsecond paragraph",
          "created_at": f"{SEARCH_DAY} 18:45:00", "is_public": "1", "is_family": "0",
          "is_friend": "0", "perm_comment": "3", "perm_tag": "4", "perm_tagme": "4",
          "license": "9", "safety": "1", "keywords": '"blue sky",harbour',
          "lat": "43.296482", "lng": "5.369780"}
TAKEN = datetime(2021, 7, 14, 18, 45, 0)  # created_at and lat/lng override the camera's EXIF
# What set_metadata changes afterwards (doc.setPerms, doc.setLicense, doc.set, doc.tags.edit,
# doc.setGeo), each with the parameters Photini sends.
PERMS = {"is_friend": "1", "is_family": "1", "is_public": "0", "perm_comment": "4",
         "perm_tag": "0", "perm_tagme": "3"}
LICENSE = "11"
METADATA = {"title": "Harbour, later", "description": "Rewritten\n\nby the uploader"}
KEYWORDS = '"blue sky",sunset,Ünïcode'
LOCATION = {"lat": "48.858370", "lng": "2.294481"}
NOTE_BOX = {"x": "10", "y": "20", "w": "50", "h": "40"}
PERSON_BOX = {"x": "100", "y": "30", "w": "60", "h": "80"}


def image_of(content: bytes) -> Image.Image:
    """The picture Pillow makes of ``content`` (fully decoded)."""
    picture = Image.open(io.BytesIO(content))
    picture.load()
    return picture


def photini_notes(photo: dict[str, Any]) -> list[dict[str, Any]]:
    """Photini's ``get_notes``: a note naming a member shows the member's name."""
    notes = []
    if "notes" in photo:
        for note in photo["notes"]["note"]:
            note = dict(note)
            note["is_person"] = "member_id" in note
            if note["is_person"]:
                note["content"] = note["membername"]
            note["authorrealname"] = note["username"]
            notes.append({k: note[k] for k in ("x", "y", "w", "h", "content", "is_person")})
    return notes


def test_desktop_uploader_sequence(wire: WireClient, profile: Profile, ctx, live_server):
    ctx.uploads.start()  # async=1: the worker makes the doc while the client polls
    steps = Steps(wire)
    try:
        run(wire, steps, profile, live_server.base_url)
    except SequenceAborted:
        pass
    if wire.api_not_last:
        steps.failures.append("[JSON order] payload first, api last (a shell uploader cuts "
                              f"values by position); not so for: {sorted(wire.api_not_last)}")
    if steps.failures:
        pytest.fail(steps.report(), pytrace=False)


def run(wire: WireClient, steps: Steps, profile: Profile, base_url: str) -> None:
    me = str(profile.user.id)
    log_in(wire, steps, profile, base_url)
    connect(wire, steps, profile)
    photo = jpeg(320, 240, color=(20, 90, 160), exif=camera_exif())
    doc_id = upload(wire, steps, profile, photo)
    set_metadata(wire, steps, doc_id)
    notes(wire, steps, profile, doc_id)
    albums(wire, steps, profile, doc_id)
    search(wire, steps, profile, doc_id)
    read_back(wire, steps, profile, doc_id)
    replace(wire, steps, profile, doc_id)
    errors(wire, steps)
    with steps("doc.getList after the upload (no user_id) lists the new doc"):
        docs = wire.ok("doc.getList")["docs"]["doc"]
        assert doc_id in [doc["doc_id"] for doc in docs]
    with steps("user.get count.docs counts the upload"):
        assert wire.ok("user.get", user_id=me)["user"]["count"]["docs"] == str(
            len(profile.doc_ids) + 1)


def log_in(wire: WireClient, steps: Steps, profile: Profile, base_url: str) -> None:
    """auth.getFrob → the member approves in a browser → auth.getToken (spec §5.4)."""
    with steps("auth.getFrob → authorize → auth.getToken", fatal=True):
        frob_answer = wire.call("auth.getFrob")
        frob = frob_answer.rsp["auth"]["frob"]
        approve(base_url, authorize_link(base_url, wire.key, frob, doc="write"),
                profile.user.username, profile.password)
        auth = wire.ok("auth.getToken", frob=frob)["auth"]
        wire.token = auth["token"]
    with steps("auth.getToken answer: permissions.doc, user.user_id"):
        assert auth["permissions"]["doc"] == "write"
        assert auth["user"]["user_id"] == str(profile.user.id)
    if wire.fmt == "json":
        with steps("JSON: a shell uploader reads the frob as the first quoted value"):
            prefix = b'{"auth":{"frob":"'
            assert frob_answer.raw[:len(prefix)] == prefix


def connect(wire: WireClient, steps: Steps, profile: Profile) -> None:
    """Photini's on_connect (checkToken, user.get and its icon, the album list with album.get
    for each), then the member's own doc list."""
    me = str(profile.user.id)
    with steps("auth.checkToken: user and permissions as Photini reads them"):
        auth = wire.ok("auth.checkToken")["auth"]
        assert auth["user"]["user_id"] == me
        assert auth["user"]["realname"] == profile.user.realname
        assert auth["user"]["lg"]
        assert auth["user"]["is_pro"] == "0"
        assert auth["permissions"]["doc"] == "write"
    with steps("user.get without user_id (defaults to the token's user)"):
        assert wire.ok("user.get")["user"]["user_id"] == me
    with steps("user.get icon: fetched over HTTP, 200, an image Pillow opens"):
        user = wire.ok("user.get", user_id=me)["user"]
        assert user["username"] == profile.user.username
        icon = wire.http.get(user["icon"], timeout=10)
        assert icon.status_code == 200, f"GET {user['icon']} → {icon.status_code}"
        image_of(icon.content)
    with steps("user.get user_id=<username> (a web alias, spec §10.4)"):
        assert wire.ok("user.get", user_id=profile.user.username)["user"]["user_id"] == me
    with steps("user.get dates.member_since"):
        assert wire.ok("user.get", user_id=me)["user"]["dates"]["member_since"]
    with steps("user.get count.docs"):
        count = wire.ok("user.get", user_id=me)["user"]["count"]
        assert count["docs"] == str(len(profile.doc_ids))

    with steps("album.getList (no user_id; Photini's paging) and album.get for each"):
        seen, page = [], 1
        while True:
            albums = wire.ok("album.getList", empty="1", per_page="2", page=str(page))["albums"]
            for album in albums["album"]:
                got = wire.ok("album.get", album_id=album["album_id"])["album"]
                seen.append({"album_id": int(got["album_id"]), "title": got["title"],
                             "description": got["description"]})
            if int(albums["page"]) >= int(albums["pages"]):
                break
            page += 1
            assert page < 10, "album.getList never reaches its last page"
        assert seen == profile.albums
    with steps("album.getList per_page=500 is lowered, not refused"):
        albums = wire.ok("album.getList", per_page="500")["albums"]
        assert albums["per_page"] == "100"
        assert len(albums["album"]) == len(profile.albums)

    with steps("doc.getList without user_id"):
        docs = wire.ok("doc.getList")["docs"]
        assert sorted(int(doc["doc_id"]) for doc in docs["doc"]) == sorted(profile.doc_ids)
        assert docs["total"] == str(len(profile.doc_ids))
    with steps("doc.getList per_page=500 is lowered, not refused"):
        assert wire.ok("doc.getList", per_page="500")["docs"]["per_page"] == "100"


def upload(wire: WireClient, steps: Steps, profile: Profile, photo: bytes) -> str:
    """doc.checkMD5, upload.file with async=1 and metadata, upload.checkTickets until done."""
    digest = hashlib.md5(photo).hexdigest()
    with steps("doc.checkMD5 before uploading: each entry's doc_id is one doc.get accepts"):
        entries = wire.ok("doc.checkMD5", md5=",".join([digest, *profile.md5_found]))
        found = {}
        for entry in entries["docs"]["doc"]:
            found[entry["md5"]] = int(entry["doc_id"])
            wire.ok("doc.get", doc_id=entry["doc_id"])
        assert found == profile.md5_found

    with steps("upload.file async=1 with metadata (signed, then the file part)", fatal=True):
        sent = wire.ok("upload.file", upload=("dummy_name", photo, "image/jpeg"), **UPLOAD)
        ticket = sent["ticket"]
        assert isinstance(ticket, str) and ticket, sent
    if wire.fmt == "json":
        with steps("JSON: a shell uploader reads the ticket as the first quoted value"):
            prefix = b'{"ticket":"'
            assert wire.last.raw[:len(prefix)] == prefix

    with steps("upload.checkTickets until done (PyIpernity's and Photini's loop)", fatal=True):
        deadline = time.monotonic() + 15
        doc_id = None
        while doc_id is None:
            for status in wire.ok("upload.checkTickets", tickets=ticket)["tickets"]["ticket"]:
                assert status["id"] == ticket
                assert not int(status.get("invalid", "0")), f"ticket {ticket} invalid"
                int(status["eta"])  # PyIpernity sleeps int(eta) seconds between polls
                if "done" in status and status["done"] == "1":
                    doc_id = status["doc_id"]
            if doc_id is None:
                assert time.monotonic() < deadline, f"ticket {ticket} not done in 15 s"
                time.sleep(0.05)

    with steps("doc.checkMD5 after uploading finds the new doc"):
        entries = wire.ok("doc.checkMD5", md5=digest)["docs"]["doc"]
        assert [entry["doc_id"] for entry in entries] == [doc_id]
    with steps("doc.get after upload: what upload.file was sent"):
        photo_doc = wire.ok("doc.get", doc_id=doc_id, extra="tags,geo,notes")["doc"]
        assert photo_doc["title"] == UPLOAD["title"]
        assert photo_doc["description"] == UPLOAD["description"]
        assert photo_doc["dates"]["created"] == UPLOAD["created_at"]
        assert photo_doc["license"] == UPLOAD["license"]
        assert photo_doc["safety"] == UPLOAD["safety"]
        assert (photo_doc["visibility"]["ispublic"], photo_doc["visibility"]["isfamily"],
                photo_doc["visibility"]["isfriend"]) == ("1", "0", "0")
        assert (photo_doc["permissions"]["comment"], photo_doc["permissions"]["tag"],
                photo_doc["permissions"]["tagme"]) == ("3", "4", "4")
        assert float(photo_doc["geo"]["lat"]) == pytest.approx(float(UPLOAD["lat"]))
        assert float(photo_doc["geo"]["lng"]) == pytest.approx(float(UPLOAD["lng"]))
    with steps("doc.get after upload: tags.tag read as tag['tag'] / tag['type']"):
        photo_doc = wire.ok("doc.get", doc_id=doc_id, extra="tags")["doc"]
        keywords = [tag["tag"] for tag in photo_doc["tags"]["tag"] if tag["type"] == "keyword"]
        assert sorted(keywords) == ["blue sky", "harbour"]
    with steps("doc.get after upload: notes.note is [] (Photini iterates it unchecked)"):
        assert wire.ok("doc.get", doc_id=doc_id, extra="notes")["doc"]["notes"]["note"] == []
    return doc_id


def set_metadata(wire: WireClient, steps: Steps, doc_id: str) -> None:
    """Photini's set_metadata: one call per kind of metadata, POSTed."""
    with steps("doc.setPerms (visibility and permissions together)"):
        wire.ok("doc.setPerms", doc_id=doc_id, **PERMS)
    with steps("doc.setLicense"):
        wire.ok("doc.setLicense", doc_id=doc_id, license=LICENSE)
    with steps("doc.set (title, description)"):
        wire.ok("doc.set", doc_id=doc_id, **METADATA)
    with steps("doc.tags.edit with no keywords (Photini sends keywords='') takes them all off"):
        wire.ok("doc.tags.edit", doc_id=doc_id, keywords="")
        assert wire.ok("doc.get", doc_id=doc_id, extra="tags")["doc"]["tags"]["tag"] == []
    with steps("doc.tags.edit"):
        wire.ok("doc.tags.edit", doc_id=doc_id, keywords=KEYWORDS)
    with steps("doc.setGeo lat=-999 lng=-999 (Photini: clear any existing location)"):
        wire.ok("doc.setGeo", doc_id=doc_id, lat="-999", lng="-999")
        assert "geo" not in wire.ok("doc.get", doc_id=doc_id, extra="geo")["doc"]
    with steps("doc.setGeo"):
        wire.ok("doc.setGeo", doc_id=doc_id, **LOCATION)
    with steps("doc.getPerms: visibility, permissions (both spellings) and can"):
        rsp = wire.ok("doc.getPerms", doc_id=doc_id)
        assert (rsp["visibility"]["ispublic"], rsp["visibility"]["isfamily"],
                rsp["visibility"]["isfriend"]) == ("0", "1", "1")
        assert (rsp["permissions"]["permcomment"], rsp["permissions"]["permtag"],
                rsp["permissions"]["permtagme"]) == ("4", "0", "3")
        assert (rsp["permissions"]["comment"], rsp["permissions"]["tag"],
                rsp["permissions"]["tagme"]) == ("4", "0", "3")
        assert (rsp["can"]["comment"], rsp["can"]["tag"], rsp["can"]["download"]) == (
            "1", "1", "1")  # the owner may


def notes(wire: WireClient, steps: Steps, profile: Profile, doc_id: str) -> None:
    """Photini's set_notes: a region note and a person note (member_id = the user), one removed."""
    me, realname = str(profile.user.id), profile.user.realname
    region = person = None
    with steps("doc.notes.add: a region note and a note naming the member"):
        region = wire.ok("doc.notes.add", doc_id=doc_id, content="Lighthouse",
                         **NOTE_BOX)["note"]["note_id"]
        person = wire.ok("doc.notes.add", doc_id=doc_id, content=realname, member_id=me,
                         **PERSON_BOX)["note"]["note_id"]
    with steps("doc.get extra=notes, read as Photini's get_notes (content, membername, username)"):
        got = photini_notes(wire.ok("doc.get", doc_id=doc_id, extra="notes")["doc"])
        assert sorted(got, key=lambda n: n["x"]) == [
            {**NOTE_BOX, "content": "Lighthouse", "is_person": False},
            {**PERSON_BOX, "content": realname, "is_person": True}]
    with steps("doc.notes.delete, then doc.get extra=notes"):
        assert region is not None, "no note to delete"
        wire.ok("doc.notes.delete", note_id=region)
        got = photini_notes(wire.ok("doc.get", doc_id=doc_id, extra="notes")["doc"])
        assert [n["x"] for n in got] == [PERSON_BOX["x"]], person


def containers(wire: WireClient, doc_id: str) -> list[str]:
    return [album["album_id"] for album in
            wire.ok("doc.getContainers", doc_id=doc_id)["albums"]["album"]]


def albums(wire: WireClient, steps: Steps, profile: Profile, doc_id: str) -> None:
    """Photini's set_albums (doc.getContainers, album.docs.add/remove); a new member first makes
    an album with album.create (Photini's "New album")."""
    with steps("doc.getContainers on a fresh upload: albums.album is []"):
        assert containers(wire, doc_id) == []
    wanted = [str(album["album_id"]) for album in profile.albums[:2]]
    if not wanted:
        with steps("album.create (Photini: rsp['album']['album_id'])"):
            created = wire.ok("album.create", title="First album", description="Made by an app",
                              perm_comment="5")
            wanted = [created["album"]["album_id"]]
    with steps("album.docs.add for each wanted album, then doc.getContainers"):
        assert wanted, "no album to add to"
        current = containers(wire, doc_id)
        for album_id in wanted:
            if album_id in current:
                current.remove(album_id)
            else:
                wire.ok("album.docs.add", album_id=album_id, doc_id=doc_id)
        for album_id in current:
            wire.ok("album.docs.remove", album_id=album_id, doc_id=doc_id)
        assert sorted(containers(wire, doc_id)) == sorted(wanted)
    with steps("album.docs.remove, then doc.getContainers"):
        assert wanted, "no album to remove from"
        wire.ok("album.docs.remove", album_id=wanted[-1], doc_id=doc_id)
        assert sorted(containers(wire, doc_id)) == sorted(wanted[:-1])


def search(wire: WireClient, steps: Steps, profile: Profile, doc_id: str) -> None:
    """Photini's find_photos: doc.search by created_min/max with extra=dates, paged to the end."""
    me = str(profile.user.id)
    with steps("doc.search created_min/max extra=dates, read as find_photos"):
        params = {"user_id": me, "media": "photo,video",
                  "created_min": f"{SEARCH_DAY} 00:00:00", "created_max": f"{SEARCH_DAY} 23:59:59",
                  "extra": "dates", "thumbsize": "100"}
        found = {}
        while True:
            rsp = wire.ok("doc.search", **params)
            if not ("doc" in rsp["docs"] and rsp["docs"]["doc"]):
                break
            for photo in rsp["docs"]["doc"]:
                taken = datetime.strptime(photo["dates"]["created"], "%Y-%m-%d %H:%M:%S")
                found[photo["doc_id"]] = taken, photo["thumb"]["url"]
            page = int(rsp["docs"]["page"])
            if page == int(rsp["docs"]["pages"]):
                break
            params["page"] = str(page + 1)
        assert set(found) == {doc_id, *map(str, profile.same_day_ids)}
        assert found[doc_id][0] == TAKEN
        thumb = wire.http.get(found[doc_id][1], timeout=10)
        assert thumb.status_code == 200, thumb.status_code
        assert image_of(thumb.content).size[0] <= 100
    with steps("doc.search with nothing in range: docs.doc is []"):
        docs = wire.ok("doc.search", user_id=me, created_min="1990-01-01 00:00:00",
                       created_max="1990-12-31 23:59:59", extra="dates")["docs"]
        assert docs["doc"] == [] and docs["total"] == "0"


def read_back(wire: WireClient, steps: Steps, profile: Profile, doc_id: str) -> None:
    """Photini's merge_metadata: doc.get extra=tags,geo,notes against what was written."""
    with steps("doc.get extra=tags,geo,notes: title, description, keywords, date, place, notes"):
        photo = wire.ok("doc.get", doc_id=doc_id, extra="tags,geo,notes")["doc"]
        assert (photo["title"], photo["description"]) == (METADATA["title"],
                                                          METADATA["description"])
        keywords = [tag["tag"] for tag in photo["tags"]["tag"] if tag["type"] == "keyword"]
        assert sorted(keywords) == sorted(["blue sky", "sunset", "Ünïcode"])
        assert datetime.strptime(photo["dates"]["created"], "%Y-%m-%d %H:%M:%S") == TAKEN
        assert "geo" in photo
        assert float(photo["geo"]["lat"]) == pytest.approx(float(LOCATION["lat"]))
        assert float(photo["geo"]["lng"]) == pytest.approx(float(LOCATION["lng"]))
        assert photini_notes(photo) == [{**PERSON_BOX, "content": profile.user.realname,
                                         "is_person": True}]
    with steps("doc.get license, visibility, permissions and can after the edits"):
        photo = wire.ok("doc.get", doc_id=doc_id)["doc"]
        assert photo["license"] == LICENSE
        assert (photo["visibility"]["ispublic"], photo["visibility"]["isfamily"],
                photo["visibility"]["isfriend"]) == ("0", "1", "1")
        assert (photo["permissions"]["comment"], photo["permissions"]["tag"],
                photo["permissions"]["tagme"]) == ("4", "0", "3")
        assert (photo["can"]["comment"], photo["can"]["tag"]) == ("1", "1")  # the owner may


def replace(wire: WireClient, steps: Steps, profile: Profile, doc_id: str) -> None:
    """Photini's "replace" path: upload.replace async=1, the ``<ticket>-<doc_id>`` ticket polled
    as it came; the metadata stays, the file, md5 and media URLs change."""
    before = wire.ok("doc.get", doc_id=doc_id)["doc"]["thumbs"]["thumb"][0]["url"]
    new_photo = jpeg(360, 240, color=(230, 200, 20))
    with steps("upload.replace async=1, then upload.checkTickets with its ticket"):
        ticket = wire.ok("upload.replace", upload=("dummy_name", new_photo, "image/jpeg"),
                         doc_id=doc_id, **{"async": "1"})["ticket"]
        deadline, done = time.monotonic() + 15, None
        while done is None:
            for status in wire.ok("upload.checkTickets", tickets=ticket)["tickets"]["ticket"]:
                assert status["id"] == ticket  # Photini looks its ticket up by this id
                assert status["invalid"] == "0"
                if status["done"] == "1":
                    done = status["doc_id"]
            if done is None:
                assert time.monotonic() < deadline, f"ticket {ticket} not done in 15 s"
                time.sleep(0.05)
        assert done == doc_id
    with steps("after upload.replace: metadata kept, new md5 found, old URLs gone"):
        photo = wire.ok("doc.get", doc_id=doc_id, extra="tags,geo,md5")["doc"]
        assert photo["title"] == METADATA["title"]
        assert sorted(tag["tag"] for tag in photo["tags"]["tag"]) == sorted(
            ["blue sky", "sunset", "Ünïcode"])
        assert float(photo["geo"]["lat"]) == pytest.approx(float(LOCATION["lat"]))
        assert photo["md5"] == hashlib.md5(new_photo).hexdigest()
        entries = wire.ok("doc.checkMD5", md5=photo["md5"])["docs"]["doc"]
        assert [entry["doc_id"] for entry in entries] == [doc_id]
        assert wire.http.get(before, timeout=10).status_code == 404
        served = wire.http.get(photo["original"]["url"], timeout=10)
        assert served.status_code == 200 and served.content == new_photo


def errors(wire: WireClient, steps: Steps) -> None:
    """Errors as clients read them: ``api.code`` a string (``int()``-able), nothing beside api."""
    for name, method, params, code in [
            ("a method error", "doc.get", {"doc_id": "999999"}, "1"),
            ("a method error", "album.get", {"album_id": "999999"}, "1"),
            ("a global error", "doc.noSuchMethod", {}, "103")]:
        with steps(f"{name}: {method} → api.code {code!r} as a string"):
            answer = wire.call(method, **params)
            assert list(answer.rsp) == ["api"], answer
            assert answer.rsp["api"]["status"] == "error"
            assert answer.rsp["api"]["code"] == code
            assert answer.rsp["api"]["message"]
