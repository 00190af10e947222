"""Many clients writing at once through a real waitress server: never a 500 (SQLite used to answer
"database is locked" when a transaction that had read tried to write), and every write answered ok
is in the database afterwards.

Eight threads mix doc.tags.add/edit, album.docs.add/remove/setList, doc.comments.add, upload.file
(async=1, small JPEG and PNG files, for the upload worker) and the grant flow (auth.getFrob, the
authorize page, auth.getToken) for CONCURRENCY_TEST_SECONDS (20 by default), while the usage
counters are flushed every few tenths of a second. Runs on SQLite and, with TEST_DATABASE_URL, on
PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import io
import os
import random
import sqlite3
import threading
import time
from collections import Counter
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from peewee import OperationalError
from PIL import Image
from playhouse.pool import MaxConnectionsExceeded

from api.app import build_context, create_app
from api.auth.tokens import issue_token, token_hash
from api.models.docs import Album, AlbumDoc, Comment, Doc, Tag, UploadTicket
from api.models.grants import Token
from api.signing import md5
from keys import store
from keys.db import db, is_busy
from tests.auth.conftest import authorize_url, csrf_of
from tests.conftest import LiveServer

DURATION = float(os.environ.get("CONCURRENCY_TEST_SECONDS", "20"))
WRITERS = 8
SHARED_DOCS = 6
SHARED_ALBUMS = 2
PASSWORD = "owner-password"
# Relative weights of the operations each writer picks from.
OPERATIONS = {"tag_add": 3, "tag_edit": 3, "album_add_shared": 2, "album_add_own": 1,
              "album_set": 3, "album_remove": 1, "comment": 2, "upload": 1, "grant": 1}


def image(kind: str, seed: int) -> bytes:
    """A tiny real JPEG or PNG, different for every seed."""
    out = io.BytesIO()
    Image.new("RGB", (48, 32), (seed * 37 % 256, seed * 11 % 256, 90)).save(out, kind)
    return out.getvalue()


class Outcomes:
    """Every answer seen, by (what, HTTP status, API code); failures kept with their details."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[tuple[str, int, str]] = Counter()
        self.failures: list[str] = []

    def seen(self, what: str, status: int, code: str, detail: str = "") -> None:
        with self.lock:
            self.counts[(what, status, code)] += 1
            if (status >= 500 and code != "503") or code not in ("0", "503"):
                self.failures.append(f"{what}: HTTP {status} code {code} {detail[:200]}")


@dataclasses.dataclass
class Writer:
    """One client thread: its own HTTP session, token, doc and album, and what it saw succeed."""

    number: int
    base: str
    key: Any
    web_key: Any
    token: str
    own_doc: int
    own_album: int
    shared_docs: list[int]
    shared_albums: list[int]
    outcomes: Outcomes
    tags_added: set[tuple[int, str]] = dataclasses.field(default_factory=set)
    own_tags: set[str] | None = None  # the last doc.tags.edit answered ok
    album_entries: set[tuple[int, int]] = dataclasses.field(default_factory=set)
    own_album_docs: set[int] = dataclasses.field(default_factory=set)
    comments: dict[int, str] = dataclasses.field(default_factory=dict)
    tickets: dict[int, str] = dataclasses.field(default_factory=dict)
    tokens: list[str] = dataclasses.field(default_factory=list)
    done: Counter[str] = dataclasses.field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.http = requests.Session()
        self.rng = random.Random(self.number)

    # -- transport ------------------------------------------------------------------------------

    def api(self, method: str, *, key: Any = None, token: bool = True,
            files: dict[str, Any] | None = None, **params: Any) -> dict | None:
        """A signed POST; the JSON answer when ok, None otherwise (recorded either way)."""
        key = key or self.key
        values = {name: str(value) for name, value in params.items()}
        values["api_key"] = key.key
        if token:
            values["auth_token"] = self.token
        values["api_sig"] = md5.signature(values, method, key.secret)
        reply = self.http.post(f"{self.base}/api/{method}/json", data=values, files=files,
                               timeout=120)
        try:
            answer = reply.json()
            code = str(answer["api"].get("code", "0"))
        except ValueError:
            answer, code = None, "-"
        self.outcomes.seen(method, reply.status_code, code, reply.text)
        return answer if code == "0" and reply.status_code == 200 else None

    def page(self, verb: str, path: str, what: str, **form: str) -> requests.Response:
        """A web page, as the logged-in browser of this writer."""
        reply = self.http.request(verb, self.base + path, data=form or None,
                                  allow_redirects=False, timeout=120)
        self.outcomes.seen(what, reply.status_code,
                           "0" if reply.status_code < 400 else str(reply.status_code), reply.text)
        return reply

    def login(self) -> None:
        form = self.page("GET", "/login", "page /login")
        self.page("POST", "/login", "page /login", username="owner", password=PASSWORD,
                  csrf_token=csrf_of(form.text), next="/apps/authorized")

    # -- the operations -------------------------------------------------------------------------

    def run(self, deadline: float) -> None:
        self.login()
        names, weights = zip(*OPERATIONS.items(), strict=True)
        step = 0
        while time.monotonic() < deadline:
            step += 1
            name = self.rng.choices(names, weights)[0]
            if getattr(self, name)(step):
                self.done[name] += 1

    def some_docs(self, low: int, high: int) -> list[int]:
        return self.rng.sample(self.shared_docs, self.rng.randint(low, high))

    def tag_add(self, step: int) -> bool:
        doc, word = self.rng.choice(self.shared_docs), f"w{self.number}x{step}"
        if self.api("doc.tags.add", doc_id=doc, keywords=word) is None:
            return False
        self.tags_added.add((doc, word))
        return True

    def tag_edit(self, step: int) -> bool:
        words = {f"e{self.number}x{step}n{i}" for i in range(self.rng.randint(0, 3))}
        if self.api("doc.tags.edit", doc_id=self.own_doc, keywords=",".join(words)) is None:
            return False
        self.own_tags = words
        return True

    def album_add_shared(self, step: int) -> bool:
        album, docs = self.rng.choice(self.shared_albums), self.some_docs(1, 2)
        if self.api("album.docs.add", album_id=album, doc_id=",".join(map(str, docs))) is None:
            return False
        self.album_entries |= {(album, doc) for doc in docs}
        return True

    def album_add_own(self, step: int) -> bool:
        docs = self.some_docs(1, 2)
        if self.api("album.docs.add", album_id=self.own_album,
                    doc_id=",".join(map(str, docs))) is None:
            return False
        self.own_album_docs |= set(docs)
        return True

    def album_set(self, step: int) -> bool:
        docs = [self.own_doc, *self.some_docs(0, 3)]
        if self.api("album.docs.setList", album_id=self.own_album,
                    doc_ids=",".join(map(str, docs)), cover_id=docs[0]) is None:
            return False
        self.own_album_docs = set(docs)
        return True

    def album_remove(self, step: int) -> bool:
        docs = self.some_docs(1, 2)
        if self.api("album.docs.remove", album_id=self.own_album,
                    doc_id=",".join(map(str, docs))) is None:
            return False
        self.own_album_docs -= set(docs)
        return True

    def comment(self, step: int) -> bool:
        text = f"comment {self.number}/{step}"
        answer = self.api("doc.comments.add", doc_id=self.rng.choice(self.shared_docs),
                          content=text)
        if answer is None:
            return False
        self.comments[int(answer["comment"]["comment_id"])] = text
        return True

    def upload(self, step: int) -> bool:
        kind = self.rng.choice(("JPEG", "PNG"))
        title = f"upload {self.number}/{step}"
        answer = self.api("upload.file", title=title, **{"async": 1},
                          files={"file": (f"p{step}.{kind.lower()}",
                                          image(kind, self.number * 1000 + step))})
        if answer is None:
            return False
        self.tickets[int(answer["ticket"])] = title
        return True

    def grant(self, step: int) -> bool:
        """The desktop flow (frob first) or the web flow (frob on Allow), then auth.getToken."""
        web = self.rng.random() < 0.5
        key = self.web_key if web else self.key
        frob = None
        if not web:
            answer = self.api("auth.getFrob", token=False)
            if answer is None:
                return False
            frob = answer["auth"]["frob"]
        url = authorize_url(key, frob=frob, doc="read")
        form = self.page("GET", url, "page /apps/authorize")
        if form.status_code != 200:
            return False
        done = self.page("POST", url, "page /apps/authorize", csrf_token=csrf_of(form.text),
                         decision="allow")
        if web:
            if done.status_code != 303:
                return False
            frob = parse_qs(urlsplit(done.headers["location"]).query)["frob"][0]
        answer = self.api("auth.getToken", key=key, token=False, frob=frob)
        if answer is None:
            return False
        self.tokens.append(answer["auth"]["token"])
        return True


def make_writers(base: str, outcomes: Outcomes) -> list[Writer]:
    owner = store.add_user("owner", PASSWORD)
    key = store.create_key(owner, "Desktop client")
    web_key = store.create_key(owner, "Web wall", auth_type="web",
                               callback_url="https://wall.example/cb")

    def doc(n: int) -> int:
        return Doc.create(owner=owner, title=f"doc {n}", secret=f"{n:016x}",
                          original_secret=f"{n:016x}", original_ext="jpg").id

    def album(title: str) -> int:
        return Album.create(owner=owner, title=title).id

    shared_docs = [doc(n) for n in range(SHARED_DOCS)]
    shared_albums = [album(f"shared {n}") for n in range(SHARED_ALBUMS)]
    return [Writer(number=n, base=base, key=key, web_key=web_key,
                   token=issue_token(key.key, owner, {"doc": "delete"}, lambda size: os.urandom(
                       size).hex(), now=int(time.time())),
                   own_doc=doc(100 + n), own_album=album(f"own {n}"), shared_docs=shared_docs,
                   shared_albums=shared_albums, outcomes=outcomes)
            for n in range(WRITERS)]


def wait_for_uploads(timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.connection_context():
            waiting = (UploadTicket.select()
                       .where(UploadTicket.state.in_(("queued", "working"))).count())
        if not waiting:
            return
        time.sleep(0.2)
    raise AssertionError(f"{waiting} upload tickets still waiting after {timeout} s")


def check_everything_answered_ok_is_stored(writers: list[Writer]) -> None:
    with db.connection_context():
        tags = set(Tag.select(Tag.doc, Tag.norm).tuples())
        entries = set(AlbumDoc.select(AlbumDoc.album, AlbumDoc.doc).tuples())
        comments = dict(Comment.select(Comment.id, Comment.content).tuples())
        tickets = {row.id: row for row in UploadTicket.select()}
        titles = dict(Doc.select(Doc.id, Doc.title).tuples())
        hashes = set(Token.select(Token.token_hash).where(Token.revoked_at == 0).tuples())
    for writer in writers:
        assert {(doc, word.lower()) for doc, word in writer.tags_added} <= tags
        if writer.own_tags is not None:
            assert {norm for doc, norm in tags if doc == writer.own_doc} == writer.own_tags
        assert writer.album_entries <= entries
        assert {doc for album, doc in entries if album == writer.own_album} == (
            writer.own_album_docs)
        assert all(comments.get(id_) == text for id_, text in writer.comments.items())
        for ticket_id, title in writer.tickets.items():
            ticket = tickets[ticket_id]
            assert ticket.state == "done", (ticket.state, ticket.error)
            assert titles[ticket.doc_id] == title
        assert {(token_hash(token),) for token in writer.tokens} <= hashes


@pytest.fixture
def busy_app(settings):
    """The app with its background workers running: the upload worker and a fast usage flush."""
    fast = dataclasses.replace(settings, usage_flush_seconds=0.3, upload_poll_seconds=0.2,
                               threads=WRITERS)
    ctx = build_context(fast)
    for worker in ctx.background:
        worker.start()
    try:
        yield create_app(fast, ctx=ctx)
    finally:
        for worker in reversed(ctx.background):
            worker.stop()


def test_concurrent_writers_never_get_a_500_and_nothing_answered_ok_is_lost(busy_app):
    outcomes = Outcomes()
    with LiveServer(busy_app, threads=WRITERS) as server:
        with db.connection_context():
            writers = make_writers(server.base_url, outcomes)
        deadline = time.monotonic() + DURATION
        threads = [threading.Thread(target=writer.run, args=(deadline,)) for writer in writers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=DURATION + 120)
        wait_for_uploads(timeout=60)
    assert not outcomes.failures, (len(outcomes.failures), outcomes.failures[:10])
    done = sum((writer.done for writer in writers), Counter())
    assert set(done) == set(OPERATIONS), done  # every kind of write was answered ok at least once
    check_everything_answered_ok_is_stored(writers)
    total = sum(outcomes.counts.values())
    busy = sum(n for (_what, _status, code), n in outcomes.counts.items() if code == "503")
    print(f"\n{total} answers in {DURATION:.0f} s, {busy} busy (503); ok: {dict(done)}")
    # 503 is the honest answer when the database stays locked past the busy timeout, but it must
    # stay rare: write transactions that wait for the lock up front (BEGIN IMMEDIATE) get none.
    assert busy <= total // 100, f"{busy} of {total} answers were 503"


# -- what a database still busy after the timeout gets -----------------------------------------

def locked() -> OperationalError:
    """What peewee raises when SQLite stays locked past the busy timeout."""
    return OperationalError(sqlite3.OperationalError("database is locked"))


def test_busy_is_recognised_and_nothing_else():
    assert is_busy(locked())
    assert is_busy(MaxConnectionsExceeded("no connection left"))
    deadlock = OperationalError("deadlock detected")
    deadlock.pgcode = "40P01"
    assert is_busy(deadlock)
    assert not is_busy(OperationalError(sqlite3.OperationalError("no such table: docs")))
    assert not is_busy(ValueError("database is locked"))


def test_a_busy_database_answers_503_not_500(call, client, monkeypatch):
    def busy(*args, **kwargs):
        raise locked()

    monkeypatch.setattr("api.auth.frobs.new_frob", busy)
    reply = call.raw("auth.getFrob")
    assert (reply.status_code, reply.json["api"]["code"]) == (503, "503")
    assert reply.json["api"]["message"] == "Service unavailable"
    assert reply.headers["Retry-After"] == "5"
    monkeypatch.setattr("api.web.pages.Pages.user", busy)
    page = client.simulate_get("/login")
    assert page.status_code == 503 and "busy" in page.text
    assert page.headers["Retry-After"] == "5"


def test_an_upload_the_database_was_too_busy_for_is_queued_again(ctx, call, token_for, owner,
                                                                  monkeypatch, clock):
    queue = ctx.uploads
    ticket = int(call("upload.file", token=token_for(owner, doc="write"), title="later",
                      files={"file": ("p.jpg", image("JPEG", 1))})["ticket"])
    write = queue._write

    def busy_once(*args):
        monkeypatch.setattr(queue, "_write", write)
        raise locked()

    monkeypatch.setattr(queue, "_write", busy_once)
    assert queue.run_once()
    row = UploadTicket.get_by_id(ticket)
    assert row.state == "queued" and queue.incoming.path(row.file_path).exists()  # waits
    assert queue.process_pending() == 0  # backing off
    clock.advance(ctx.settings.upload_lease_seconds)
    assert queue.process_pending() == 1
    assert Doc.get_by_id(UploadTicket.get_by_id(ticket).doc_id).title == "later"


# -- many clients writing to the same doc or album at the same instant (review of issue 7) -------


def race(server: Any, writer: Writer, calls: list[tuple[str, dict[str, Any]]]) -> list[dict]:
    """Send every call at once (one thread each, released together); the raw JSON answers."""
    start = threading.Barrier(len(calls))
    answers: list[dict] = [{}] * len(calls)

    def send(index: int) -> None:
        method, params = calls[index]
        values = {name: str(value) for name, value in params.items()}
        values |= {"api_key": writer.key.key, "auth_token": writer.token}
        values["api_sig"] = md5.signature(values, method, writer.key.secret)
        start.wait()
        reply = requests.post(f"{server.base_url}/api/{method}/json", data=values, timeout=120)
        assert reply.status_code == 200, reply.text
        answers[index] = reply.json()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return answers


def test_same_object_races_end_in_one_consistent_answer(busy_app):
    """On PostgreSQL these interleaved into unique and foreign-key violations (HTTP 500), several
    "deleted" answers for one doc and duplicate tags; the doc or album row is now locked by the
    write that changes it. SQLite serialises writers anyway; the test runs on both."""
    with LiveServer(busy_app, threads=16) as server:
        with db.connection_context():
            writer = make_writers(server.base_url, Outcomes())[0]
        album, docs = writer.own_album, writer.shared_docs
        setlists = race(server, writer, [("album.docs.setList", {
            "album_id": album, "doc_ids": ",".join(map(str, docs[n % 3:])),
            "cover_id": docs[3]}) for n in range(12)])
        tags = race(server, writer, [("doc.tags.add", {"doc_id": docs[0], "keywords": "same"})
                                     for _ in range(12)])
        deletes = race(server, writer, [("doc.comments.add", {"doc_id": docs[1], "content": "c"})
                                        if n % 2 else ("doc.delete", {"doc_id": docs[1]})
                                        for n in range(12)])
    for answer in setlists + tags:
        assert answer["api"]["status"] == "ok", answer
    assert all(answer["api"].get("code") in (None, "1") for answer in deletes), deletes
    deleted = [a for a, n in zip(deletes, range(12), strict=True)
               if n % 2 == 0 and a["api"]["status"] == "ok"]
    assert len(deleted) == 1, deletes  # one delete wins; the others find no doc (code 1)
    with db.connection_context():
        assert Tag.select().where(Tag.doc == docs[0], Tag.norm == "same").count() == 1
        entries = [row.doc_id for row in AlbumDoc.select().where(AlbumDoc.album == album)]
        assert len(entries) == len(set(entries)) and len(entries) in (4, 5, 6)
        assert not Comment.select().where(Comment.doc == docs[1]).exists()


def test_a_busy_database_never_holds_a_password_hash(monkeypatch):
    """argon2 runs before the transaction opens: on SQLite the transaction holds the one write
    lock from its BEGIN, and a fifth of a second per sign-up would stall every other writer."""
    seen: list[bool] = []
    real = store.hash_password

    def spy(password: str) -> str:
        seen.append(db.in_transaction())
        return real(password)

    monkeypatch.setattr(store, "hash_password", spy)
    store.add_user("hashed-outside", "a password")
    assert seen == [False]


def test_a_ticket_is_settled_even_when_the_database_stays_busy_a_while(ctx, call, token_for,
                                                                       owner, monkeypatch, clock):
    queue = ctx.uploads
    ticket = int(call("upload.file", token=token_for(owner, doc="write"), title="later",
                      files={"file": ("p.jpg", image("JPEG", 2))})["ticket"])
    write, execute = queue._write, UploadTicket.update
    failures = iter([locked(), locked()])

    def busy_update(*args, **kwargs):  # the requeue itself meets a busy database twice
        error = next(failures, None)
        if error is not None:
            raise error
        return execute(*args, **kwargs)

    def busy_once(*args):
        monkeypatch.setattr(queue, "_write", write)
        monkeypatch.setattr(UploadTicket, "update", busy_update)
        raise locked()

    monkeypatch.setattr(queue, "_write", busy_once)
    assert queue.run_once()
    monkeypatch.setattr(UploadTicket, "update", execute)
    assert UploadTicket.get_by_id(ticket).state == "queued"  # not stuck in "working"
    clock.advance(ctx.settings.upload_lease_seconds)  # its back-off
    assert queue.process_pending() == 1


def test_async_0_answers_its_ticket_when_the_wait_meets_a_busy_database(ctx, call, token_for,
                                                                        owner, monkeypatch):
    """The ticket is stored before the wait: a 503 would make the client upload it again."""
    queue = ctx.uploads

    def busy(*args):
        raise locked()

    monkeypatch.setattr(queue, "claim", busy)
    answer = call("upload.file", token=token_for(owner, doc="write"), title="t", **{"async": 0},
                  files={"file": ("p.jpg", image("JPEG", 3))})
    assert answer["api"]["status"] == "ok" and "ticket" in answer


def test_a_read_is_answered_when_its_visit_cannot_be_counted(call, token_for, owner, monkeypatch):
    member = store.add_user("visitor", "a password")
    doc = Doc.create(owner=owner, title="seen", secret="1" * 16, original_secret="2" * 16,
                     original_ext="jpg")
    token = token_for(member, doc="read")

    class BusyDatabase:
        def atomic(self, *args, **kwargs):
            raise locked()

    with monkeypatch.context() as patch:
        patch.setattr("api.content.visits.db", BusyDatabase())  # the visit cannot begin
        answer = call("doc.get", token=token, doc_id=doc.id)
    assert answer["doc"]["doc_id"] == str(doc.id)
    assert Doc.get_by_id(doc.id).visits == 0  # the visit is lost, the read is not
