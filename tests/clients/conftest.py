"""Fixtures for the client-sequence tests: a wire client that signs, sends and decodes the way the
desktop uploaders do (Photini's ipernity module, PyIpernity 0.3.1), a step recorder, and the two
member profiles (a new member with nothing, a busy one with albums, tagged docs and notes).

The client talks HTTP to a live waitress server. JSON answers are parsed as sent (key order kept,
so the test can check that ``api`` comes last); PHP answers go through php-cli's own
``unserialize`` and back out through ``json_encode``, so a test indexes the same structure in both.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from ipernity.api import _methods as PYIPERNITY_METHODS

from api.content.tags import add_tags
from api.models.docs import Album, AlbumDoc, Doc, Note, Thumb
from api.signing import md5
from keys import store
from tests.auth.conftest import csrf_of
from tests.conftest import require_program

# php -r: decode with PHP's own unserialize, hand the result back as JSON (exit 3 if it refuses).
PHP_DECODE = ('$v = unserialize(stream_get_contents(STDIN)); '
              'if ($v === false) { exit(3); } echo json_encode($v, JSON_UNESCAPED_UNICODE);')
TIMEOUT = 10


@dataclass
class Answer:
    """One API answer: the decoded structure a client indexes, and what came over the wire."""

    method: str
    status: int
    content_type: str
    raw: bytes
    rsp: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.rsp.get("api", {}).get("status") == "ok"

    def __str__(self) -> str:
        text = json.dumps(self.rsp, ensure_ascii=False)
        return f"{self.method} -> {text[:400]}{'…' if len(text) > 400 else ''}"


class ApiFailed(AssertionError):
    """An answer whose ``api.status`` is not ``ok`` where the client expected success."""


class WireClient:
    """Signs like Photini's ``IpernitySession.sign_request`` (api_key, ``lg``, auth_token, md5 over
    the sorted name+value pairs + method + secret, the file part left out), POSTs the methods that
    PyIpernity's methods.json flags ``post``, and decodes JSON or PHP."""

    def __init__(self, base_url: str, key: Any, fmt: str) -> None:
        self.base_url = base_url
        self.key = key
        self.fmt = fmt
        self.token: str | None = None
        self.http = requests.Session()
        self.php = require_program("php") if fmt == "php" else None
        self.last: Answer | None = None
        self.api_not_last: set[str] = set()  # JSON answers whose last top-level key is not api

    def sign(self, method: str, params: dict[str, str]) -> dict[str, str]:
        params = dict(params)
        params["api_key"] = self.key.key
        params.setdefault("lg", "en")
        if self.token:
            params["auth_token"] = self.token
        string = "".join(name + params[name] for name in sorted(params))
        params["api_sig"] = hashlib.md5((string + method + self.key.secret).encode()).hexdigest()
        return params

    def url(self, method: str) -> str:
        # Photini calls /api/<method> and reads the default format (JSON); PHP must be asked for.
        return f"{self.base_url}/api/{method}" + ("" if self.fmt == "json" else f"/{self.fmt}")

    def call(self, method: str, *, upload: tuple[str, bytes, str] | None = None,
             **params: Any) -> Answer:
        """Any answer, ok or error; the HTTP status must be 200 and the body must decode."""
        data = self.sign(method, {k: str(v) for k, v in params.items() if v is not None})
        post = upload is not None or PYIPERNITY_METHODS.get(method, {}).get(
            "authentication", {}).get("post") == "1"
        if upload is not None:  # Photini: sign first, then add the file part (not signed)
            reply = self.http.post(self.url(method), data=data, files={"file": upload},
                                   timeout=TIMEOUT)
        elif post:
            reply = self.http.post(self.url(method), data=data, timeout=TIMEOUT)
        else:
            reply = self.http.get(self.url(method), params=data, timeout=TIMEOUT)
        answer = Answer(method, reply.status_code, reply.headers.get("content-type", ""),
                        reply.content, self.decode(method, reply.content))
        self.last = answer
        assert reply.status_code == 200, f"HTTP {reply.status_code} for {answer}"
        if self.fmt == "json" and (list(answer.rsp)[-1:] != ["api"]
                                   or (answer.ok and len(answer.rsp) > 1
                                       and next(iter(answer.rsp)) == "api")):
            self.api_not_last.add(method)
        return answer

    def ok(self, method: str, *, upload: tuple[str, bytes, str] | None = None,
           **params: Any) -> dict[str, Any]:
        """The decoded answer of a call the client expects to succeed (``rsp['api']['status']``)."""
        answer = self.call(method, upload=upload, **params)
        if not answer.ok:
            raise ApiFailed(f"API error: {answer}")
        return answer.rsp

    def decode(self, method: str, body: bytes) -> dict[str, Any]:
        if self.fmt == "json":
            try:
                return json.loads(body)
            except ValueError:
                raise AssertionError(f"{method}: not JSON: {body[:200]!r}") from None
        done = subprocess.run([self.php, "-r", PHP_DECODE], input=body, capture_output=True,
                              timeout=30)
        assert done.returncode == 0, f"{method}: php unserialize refused {body[:200]!r}"
        decoded = json.loads(done.stdout)
        assert isinstance(decoded, dict), f"{method}: php decoded {decoded!r}"
        return decoded

    def close(self) -> None:
        self.http.close()


class SequenceAborted(Exception):
    """A step the rest of the sequence depends on failed."""


@dataclass
class Steps:
    """Runs the sequence step by step; a failing step is recorded and the sequence goes on, so
    one run lists every broken part of the contract. ``fatal`` steps stop it (later steps need
    their result)."""

    client: WireClient
    failures: list[str] = field(default_factory=list)

    @contextlib.contextmanager
    def __call__(self, name: str, *, fatal: bool = False) -> Iterator[None]:
        try:
            yield
        except Exception as exc:  # every failure of a step is reported
            last = f"\n      last answer: {self.client.last}" if self.client.last else ""
            detail = exc.args[0] if type(exc) is KeyError and exc.args else exc
            self.failures.append(f"[{name}] {type(exc).__name__}: {detail}{last}")
            if fatal:
                raise SequenceAborted(name) from exc

    def report(self) -> str:
        return f"{len(self.failures)} step(s) failed:\n  " + "\n  ".join(self.failures)


def approve(base_url: str, authorize_url: str, username: str, password: str) -> None:
    """The member logs in on the site and allows the app, in a browser of their own."""
    with requests.Session() as browser:
        first = browser.get(authorize_url, allow_redirects=False, timeout=TIMEOUT)
        assert first.status_code == 303, first.status_code
        next_url = authorize_url[len(base_url):]
        page = browser.get(f"{base_url}/login", params={"next": next_url}, timeout=TIMEOUT)
        page = browser.post(f"{base_url}/login", timeout=TIMEOUT, data={
            "csrf_token": csrf_of(page.text), "username": username, "password": password,
            "next": next_url})
        assert ">Allow</button>" in page.text, page.text[:500]
        done = browser.post(authorize_url, timeout=TIMEOUT,
                            data={"csrf_token": csrf_of(page.text), "decision": "allow"})
        assert done.status_code == 200, done.status_code


def authorize_link(base_url: str, key: Any, frob: str, **perms: str) -> str:
    """The desktop authorization link, signed without a method name (spec §4.2), with the ``lg``
    Photini's ``get_auth_url`` adds to it."""
    params = {"api_key": key.key, "frob": frob, "lg": "en",
              **{f"perm_{k}": v for k, v in perms.items()}}
    params["api_sig"] = md5.signature(params, None, key.secret)
    return f"{base_url}/apps/authorize?" + urlencode(params)


# --- member profiles ---------------------------------------------------------------------------

@dataclass
class Profile:
    """A member as the sequence expects to find them."""

    name: str
    user: Any
    password: str
    albums: list[dict[str, Any]] = field(default_factory=list)  # album_id, title, description
    doc_ids: list[int] = field(default_factory=list)
    md5_found: dict[str, int] = field(default_factory=dict)  # md5 of one of their docs → doc_id
    same_day_ids: list[int] = field(default_factory=list)  # docs created on SEARCH_DAY


SEARCH_DAY = "2021-07-14"
THUMB_SIZES = {"75x": (75, 75), "100": (100, 75), "240": (240, 180), "500": (500, 375)}


def seed_busy_member(user: Any, now: int) -> Profile:
    """Five docs (tagged, two with notes, one taken on SEARCH_DAY), three albums holding them."""
    profile = Profile("busy", user, "busy-password")
    counter = itertools.count(1)
    created = ["2019-03-01 09:00:00", f"{SEARCH_DAY} 08:00:00", "2020-12-24 18:30:00",
               "2022-01-02 07:15:00", "0000-00-00 00:00:00"]
    for when in created:
        n = next(counter)
        doc = Doc.create(owner=user, title=f"Busy doc {n}", description=f"Number {n}",
                         created=when, posted_at=now - 1000 + n, modified_at=now - 1000 + n,
                         secret=f"b{n:07x}", original_secret=f"c{n:07x}", original_ext="jpg",
                         width=500, height=375, md5=hashlib.md5(f"busy {n}".encode()).hexdigest())
        Thumb.insert_many([{"doc": doc.id, "label": label, "w": w, "h": h}
                           for label, (w, h) in THUMB_SIZES.items()]).execute()
        profile.doc_ids.append(doc.id)
        if when.startswith(SEARCH_DAY):
            profile.same_day_ids.append(doc.id)
        if n <= 3:
            add_tags(doc, keywords=[f"tag{n}", "busy life"], added_by=user, now=now)
        if n <= 2:
            Note.create(doc=doc, author=user, x=5, y=5, w=20, h=20, content=f"Note on {n}",
                        created_at=now)
    first = Doc.get_by_id(profile.doc_ids[0])
    profile.md5_found[first.md5] = first.id
    for position, (title, description) in enumerate(
            [("Holidays", "Sun and sea"), ("Family", "Us"), ("Empty album", "")], 1):
        album = Album.create(owner=user, title=title, description=description, position=position,
                             created_at=now, modified_at=now)
        if position < 3:
            AlbumDoc.insert_many([{"album": album.id, "doc": doc_id, "position": i,
                                   "added_at": now}
                                  for i, doc_id in enumerate(profile.doc_ids[position - 1::2], 1)
                                  ]).execute()
        profile.albums.append({"album_id": album.id, "title": title, "description": description})
    return profile


@pytest.fixture(params=["new", "busy"])
def profile(request, ctx, clock) -> Profile:
    """(a) a member who just signed up: no albums, tags, notes or docs; (b) a busy member."""
    if request.param == "new":
        return Profile("new", store.add_user("newbie", "newbie-password", realname="New Bee"),
                       "newbie-password")
    user = store.add_user("busy", "busy-password", realname="Busy Bee")
    return seed_busy_member(user, int(clock()))


@pytest.fixture(params=["json", "php"])
def fmt(request) -> str:
    return request.param


@pytest.fixture
def wire(live_server, api_key, fmt) -> Iterator[WireClient]:
    client = WireClient(live_server.base_url, api_key, fmt)
    yield client
    client.close()
