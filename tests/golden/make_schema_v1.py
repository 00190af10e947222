"""Make ``schema-v1.sqlite3``: a database written by the code of schema version 1 (before numbered
migrations), filled with a little of everything, for tests/core/test_migrations.py.

It must run against that code, not the current one: check out the last commit before migrations
(``b9c42de``) in a worktree and put it first on the path:

    git worktree add --detach /tmp/v1 b9c42de
    API_PASSWORD_PROFILE=CHEAPEST PYTHONPATH=/tmp/v1 .venv/bin/python \
        tests/golden/make_schema_v1.py tests/golden/schema-v1.sqlite3
    git worktree remove /tmp/v1

``--postgresql schema-v1.postgresql.sql`` writes instead the DDL that code ran on PostgreSQL (no
server needed: the statements are recorded, not executed); test_schema_history.py replays it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("API_PASSWORD_PROFILE", "CHEAPEST")  # before the imports below read it

from api.grants import issue_token
from api.models.accounts import LoginFailure, Session
from api.models.docs import (
    Album,
    AlbumDoc,
    AlbumVisit,
    Comment,
    Doc,
    DocVisit,
    Note,
    Relation,
    Tag,
    Thumb,
    UploadTicket,
)
from api.models.grants import Frob
from api.schema import create_schema
from keys import store
from keys.db import db, open_database
from keys.models import UsageCounter

T = 1_700_000_000  # every timestamp is fixed, so the file's content is the same on every run


def fill() -> None:
    """A few rows in every table; the highest doc, album, comment, note and user are deleted, as
    a member would, so a database of this version would give those ids again."""
    alice = store.add_user("alice", "alice-password", realname="Alice A.")
    bob = store.add_user("bob", "bob-password", realname="Bob B.")
    carol = store.add_user("carol", "carol-password")
    gone_user = store.add_user("dave", "dave-password")
    desktop = store.create_key(alice, "Uploader", description="desktop app")
    store.create_key(bob, "Wall", auth_type="web", callback_url="https://wall.example/cb")
    Relation.create(user=alice, contact=bob, is_friend=True)

    docs = []
    for n, owner in enumerate((alice, alice, bob, alice, bob), 1):
        doc = Doc.create(owner=owner, title=f"Photo {n}", secret=f"{n:016x}",
                         original_secret=f"{n + 100:016x}", posted_at=T + n, modified_at=T + n,
                         original_ext="jpg", width=640, height=480, md5=f"{n:032x}")
        Thumb.create(doc=doc, label="100", w=100, h=75)
        Thumb.create(doc=doc, label="500", w=500, h=375)
        docs.append(doc)
    Tag.create(doc=docs[0], type="keyword", tag="Blue Sky", norm="blue sky", added_by=alice,
               created_at=T)
    Tag.create(doc=docs[0], type="member", tag="bob", norm=str(bob.id), member=bob,
               added_by=alice, created_at=T)
    Tag.create(doc=docs[2], type="keyword", tag="sunset", norm="sunset", added_by=bob,
               created_at=T)
    first = Comment.create(doc=docs[0], author=bob, content="Nice!", posted_at=T + 10)
    Comment.create(doc=docs[0], author=alice, parent=first, content="Thanks", posted_at=T + 11)
    Comment.create(doc=docs[1], author=carol, content="gone soon", posted_at=T + 12)
    Doc.update(comments=2).where(Doc.id == docs[0].id).execute()
    Note.create(doc=docs[0], author=alice, member=bob, x=1, y=2, w=30, h=40, content="Bob",
                created_at=T)
    Note.create(doc=docs[1], author=alice, x=5, y=5, w=10, h=10, content="gone soon",
                created_at=T)
    DocVisit.create(doc=docs[0], visitor=bob, visited_at=T + 20, first_visit_at=T + 20)
    holiday = Album.create(owner=alice, title="Holiday", cover=docs[1], created_at=T,
                           modified_at=T)
    Album.create(owner=alice, title="Gone soon", created_at=T, modified_at=T)
    for position, doc in enumerate((docs[0], docs[1], docs[3]), 1):
        AlbumDoc.create(album=holiday, doc=doc, position=position, added_at=T)
    AlbumVisit.create(album=holiday, visitor=bob, visited_at=T + 30, first_visit_at=T + 30)
    UploadTicket.create(user=alice, api_key=desktop.key, state="done", doc=docs[3],
                        filename="p4.jpg", file_size=1234, created_at=T, finished_at=T + 1)
    UploadTicket.create(user=alice, api_key=desktop.key, state="failed", filename="bad.jpg",
                        error="Rejected", created_at=T)
    issue_token(desktop.key, bob, {"doc": "write"}, lambda n: "b0b" * n, now=T)
    issue_token(desktop.key, alice, {"doc": "delete", "profile": "read"}, lambda n: "a1" * n,
                now=T)
    Frob.create(frob="f" * 64, api_key=desktop.key, created_at=T, expires_at=T + 600,
                state="approved", user=alice, perm_doc="read")
    Session.create(id_hash="5" * 64, user=alice, created_at=T, expires_at=T + 3600)
    LoginFailure.create(scope="user:bob", at=T)
    UsageCounter.create(api_key=desktop.key, method="doc.get", hour=T // 3600, code=0, calls=3,
                        total_ms=4.5)

    # What members deleted: the newest of each kind, so version 1 would give these ids again.
    docs[4].delete_instance(recursive=True)
    Album.delete().where(Album.title == "Gone soon").execute()
    Comment.delete().where(Comment.content == "gone soon").execute()
    Note.delete().where(Note.content == "gone soon").execute()
    gone_user.delete_instance(recursive=True)


def postgresql_ddl() -> str:
    """The statements version 1's ``create_schema`` ran on a fresh PostgreSQL database."""
    from peewee import PostgresqlDatabase

    from api.schema import ALL_MODELS

    class Recorder(PostgresqlDatabase):
        def __init__(self) -> None:
            super().__init__("v1")
            self.statements: list[str] = []

        def execute_sql(self, sql, params=None, *args, **kwargs):
            assert not params, (sql, params)  # DDL only: nothing to bind
            self.statements.append(sql)
            return self  # stands in for a cursor: nothing is read back with safe=False

        def fetchone(self):
            return None

    recorder = Recorder()
    db.initialize(recorder)
    recorder.create_tables(ALL_MODELS, safe=False)
    head = ("-- The tables version 1 (before numbered migrations) created on PostgreSQL, recorded\n"
            "-- by tests/golden/make_schema_v1.py --postgresql against that code; one per line.\n")
    return head + "".join(f"{sql};\n" for sql in recorder.statements)


def main(path: str) -> int:
    if path == "--postgresql":
        Path(sys.argv[2]).write_text(postgresql_ddl())
        return 0
    out = Path(path)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{out}{suffix}").unlink(missing_ok=True)
    print(f"schema of {sys.modules[create_schema.__module__].__file__}", file=sys.stderr)
    open_database(f"sqlite:///{out.resolve()}")
    create_schema()
    with db.connection_context():
        with db.atomic():
            fill()
        db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute_sql("PRAGMA journal_mode=delete")  # one self-contained file
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
