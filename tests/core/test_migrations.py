"""Ids are never given twice, and the numbered schema migrations (api/migrations.py).

tests/golden/schema-v1.sqlite3 was written by the code of schema version 1 (before migrations);
tests/golden/make_schema_v1.py makes it again.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.app import build_context, create_app
from api.config import Settings
from api.models.docs import Album, Comment, Doc, UploadTicket
from api.runtime import migrations
from api.runtime.migrations import LATEST, SchemaOutOfDate, SchemaTooNew, SchemaVersion
from api.runtime.schema import ALL_MODELS, create_schema
from api.server import main as serve_main
from keys.db import db, open_database
from tests.conftest import TEST_DATABASE_URL, Caller, free_port, own_postgres_database
from tests.core.test_schema_history import assert_same, describe
from tests.core.test_serve import ROOT, wait_for_line
from tests.upload.conftest import jpeg

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "schema-v1.sqlite3"
ALICE_TOKEN = "1-" + "a1" * 16  # issued by make_schema_v1.py with a fixed "random" secret
sqlite_only = pytest.mark.skipif(bool(TEST_DATABASE_URL), reason="a SQLite file")


def create_delete_create(call: Caller, token: str, make, remove) -> tuple[int, int]:
    """The id of the newest thing made, then the id of the next one made after deleting it."""
    make()
    deleted = make()
    remove(deleted)
    return deleted, make()


def api_writers(call: Caller, token: str) -> dict[str, tuple]:
    """For docs, albums, comments and notes: how to make one through the API, and delete it."""

    def ok(method: str, **params) -> dict:
        answer = call(method, token=token, **params)
        assert answer["api"]["status"] == "ok", (method, answer)
        return answer

    def upload() -> int:
        ticket = ok("upload.file", files={"file": ("p.jpg", jpeg(60, 40))}, **{"async": 0})
        return UploadTicket.get_by_id(int(ticket["ticket"])).doc_id

    doc = upload()
    return {
        "doc": (upload, lambda doc_id: ok("doc.delete", doc_id=doc_id)),
        "album": (lambda: int(ok("album.create", title="A")["album"]["album_id"]),
                  lambda album_id: ok("album.delete", album_id=album_id)),
        "comment": (lambda: int(ok("doc.comments.add", doc_id=doc, content="hi")
                                ["comment"]["comment_id"]),
                    lambda comment_id: ok("doc.comments.delete", comment_id=comment_id)),
        "note": (lambda: int(ok("doc.notes.add", doc_id=doc, content="n", x=1, y=1, w=5, h=5)
                             ["note"]["note_id"]),
                 lambda note_id: ok("doc.notes.delete", note_id=note_id)),
    }


def test_a_deleted_id_is_never_given_again(call, token_for, owner):
    token = token_for(owner, doc="delete")
    for kind, (make, remove) in api_writers(call, token).items():
        deleted, again = create_delete_create(call, token, make, remove)
        assert again > deleted, kind


def test_a_fresh_database_is_stamped_at_the_latest_version(ctx):
    with db.connection_context():
        assert [row.version for row in SchemaVersion.select()] == [LATEST]
        if not TEST_DATABASE_URL:
            sql = dict(db.execute_sql("SELECT name, sql FROM sqlite_master WHERE type = 'table' "
                                      "AND name NOT LIKE 'sqlite_%'").fetchall())
            assert all("AUTOINCREMENT" in sql[model._meta.table_name] for model in ALL_MODELS)


def test_a_database_newer_than_the_code_refuses_to_start(ctx, settings, tmp_path, capsys):
    with db.connection_context():
        SchemaVersion.insert(version=LATEST + 1, applied_at=0).execute()
    try:
        with pytest.raises(SchemaTooNew, match=rf"version {LATEST + 1}.* up to {LATEST}"):
            create_schema()
        assert serve_main(["--db", settings.database_url, "--data-dir", str(tmp_path),
                           "--port", "1"]) == 2
        assert f"not starting: the database schema is version {LATEST + 1}" in (
            capsys.readouterr().err)
    finally:
        with db.connection_context():
            SchemaVersion.delete().where(SchemaVersion.version > LATEST).execute()


def test_unstamped_database_is_version_1_and_one_of_two_starting_processes_migrates(
        ctx, owner, call, token_for):
    """A database from before migrations has no version table; two processes starting together
    on it (threads here, each with its own connection) migrate it once, under the lock."""
    token = token_for(owner, doc="write")
    answer = call("album.create", token=token, title="Kept")
    with db.connection_context():
        db.execute_sql(f'DROP TABLE "{SchemaVersion._meta.table_name}"')
    versions, errors = [], []

    def start() -> None:
        try:
            versions.append(create_schema())
        except Exception as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and versions == [LATEST] * 4
    with db.connection_context():
        assert [row.version for row in SchemaVersion.select()] == list(range(2, LATEST + 1))
        assert Album.get_by_id(int(answer["album"]["album_id"])).title == "Kept"
    assert call("album.create", token=token, title="Next")["api"]["status"] == "ok"


# -- the golden database of version 1 -----------------------------------------------------------

def table_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as connection:
        tables = [name for (name,) in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND name != 'schema_version' AND name NOT LIKE 'docs_fts_%'")]  # FTS5's own
        return {name: connection.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0]
                for name in tables}


def schema_of(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as connection:
        return dict(connection.execute("SELECT name, sql FROM sqlite_master "
                                       "WHERE name NOT LIKE 'sqlite_%'").fetchall())


@sqlite_only
def test_golden_v1_database_is_upgraded_in_place(tmp_path):
    path = tmp_path / "api.sqlite3"
    shutil.copy(GOLDEN, path)
    before = table_counts(path)
    assert before["docs"] == 4 and "schema_version" not in schema_of(path)
    settings = Settings(data_dir=str(tmp_path / "data"), database_url=f"sqlite:///{path}",
                        access_log=False)
    ctx = build_context(settings)  # what the server does at start: migrates
    # step 3 adds the (empty) audit list, step 4 the request log, step 5 the usage statistics,
    # step 6 OAuth request tokens and used nonces, step 7 the full-text index of every doc,
    # step 8 faves, folders and video renditions
    assert table_counts(path) == {**before, "key_audit": 0, "request_log": 0,
                                  "usage_latency": 0, "usage_users": 0,
                                  "oauth_request_tokens": 0, "used_nonces": 0, "docs_fts": 4,
                                  "doc_faves": 0, "album_faves": 0, "folders": 0,
                                  "folder_albums": 0, "medias": 0,
                                  "groups": 0, "group_members": 0, "group_docs": 0,
                                  "posts": 0, "post_docs": 0, "post_comments": 0,
                                  "post_faves": 0, "post_visits": 0}
    with db.connection_context():
        assert [row.version for row in SchemaVersion.select()] == list(range(2, LATEST + 1))
        assert [d.title for d in Doc.select().order_by(Doc.id)] == [
            "Photo 1", "Photo 2", "Photo 3", "Photo 4"]
        reply = Comment.get(Comment.content == "Thanks")
        assert (reply.parent.content, reply.doc.title, reply.author.username) == (
            "Nice!", "Photo 1", "alice")
        holiday = Album.get(Album.title == "Holiday")
        assert (holiday.cover.title, [e.doc_id for e in holiday.entries]) == ("Photo 2", [1, 2, 4])
        assert db.execute_sql("PRAGMA foreign_key_check").fetchall() == []
        assert db.execute_sql("PRAGMA foreign_keys").fetchone() == (1,)

    # The schema is now the one a fresh database gets, indexes included (as the backend reports
    # it, not as text: SQLite keeps an added column's text where ALTER TABLE put it).
    with db.connection_context():
        migrated = describe(db.obj)
    open_database(f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    create_schema()
    with db.connection_context():
        assert_same(describe(db.obj), migrated)
    # The text of the SQL is no longer compared: step 3 adds columns, and SQLite keeps the
    # ALTER TABLE text (the structural comparison above is what counts).

    # The app works on it: the old token, and ids above every id still present, even after a
    # delete of the newest one.
    open_database(settings.resolved_database_url)
    from falcon.testing import TestClient

    from api.models.grants import Token
    from keys.models import ApiKey

    with db.connection_context():
        key = ApiKey.get(ApiKey.key == Token.get(Token.user == 1, Token.perm_doc == "delete")
                         .api_key)
    call = Caller(TestClient(create_app(settings, ctx=ctx)), ctx, key)
    assert call("auth.checkToken", token=ALICE_TOKEN)["auth"]["user"]["username"] == "alice"
    writers = api_writers(call, ALICE_TOKEN)
    for kind, (make, remove) in writers.items():
        deleted, again = create_delete_create(call, ALICE_TOKEN, make, remove)
        assert again > deleted, kind

    # Starting again changes nothing: the version is read and that is all.
    statements: list[str] = []
    database, original = db.obj, db.obj.execute_sql
    database.execute_sql = lambda sql, *args, **kwargs: (statements.append(sql),
                                                         original(sql, *args, **kwargs))[1]
    try:
        assert create_schema() == LATEST
    finally:
        del database.execute_sql
    assert statements and all(sql.lstrip().upper().startswith("SELECT") for sql in statements)
    for worker in ctx.background:
        worker.stop()


@sqlite_only
def test_sqlite_rebuild_keeps_the_counter_above_every_id(tmp_path):
    """sqlite_sequence starts at the highest id copied, so nothing present is ever shadowed."""
    path = tmp_path / "api.sqlite3"
    shutil.copy(GOLDEN, path)
    open_database(f"sqlite:///{path}")
    assert create_schema() == LATEST
    with sqlite3.connect(path) as connection:
        sequence = dict(connection.execute("SELECT name, seq FROM sqlite_sequence"))
        for table in migrations.V1_TABLES:
            top = connection.execute(f'SELECT MAX(id) FROM "{table}"').fetchone()[0]
            assert sequence.get(table) == top, table


# -- the one-time schema step; processes starting together (issue 11 item 3) ---------------------

@pytest.fixture
def empty_database(tmp_path) -> Iterator[str]:
    """A database without a table: a new SQLite file, or a PostgreSQL database of this test's
    own (the run's shared one has every table)."""
    if not TEST_DATABASE_URL:
        yield f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        return
    with own_postgres_database(f"apitest_{os.getpid()}_fresh") as url:
        yield url


def run(command: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={"PATH": "/usr/bin:/bin", **env})


def test_a_start_told_not_to_migrate_waits_for_the_schema_step(empty_database, tmp_path):
    where = ["--db", empty_database, "--data-dir", str(tmp_path / "data")]
    refused = (f"error: not starting: the database has no schema yet, this code needs version "
               f"{LATEST}: run `python -m api migrate` (or serve.py --migrate-only) first")
    for told in (run(["serve.py", "--no-migrate", *where, "--port", "1"]),
                 run(["serve.py", *where, "--port", "1"], API_AUTO_MIGRATE="0")):
        assert (told.returncode, told.stderr.strip(), told.stdout) == (2, refused, "")
    for step in (["-m", "api", "migrate", *where], ["serve.py", "--migrate-only", *where]):
        done = run(step)
        assert (done.returncode, done.stdout) == (0, f"schema at version {LATEST}\n"), done.stderr
    open_database(empty_database)
    with db.connection_context():
        assert [row.version for row in SchemaVersion.select()] == [LATEST]
        SchemaVersion.delete().execute()
        SchemaVersion.insert(version=LATEST - 1, applied_at=0).execute()
    with pytest.raises(SchemaOutOfDate, match=f"schema is version {LATEST - 1}, this code"):
        create_schema(migrate=False)
    db.close()


def test_three_processes_started_at_once_on_an_empty_database_all_come_up(empty_database,
                                                                          tmp_path):
    """The issue saw 2 of 3 crash (``create_tables`` raced); the migration lock serialises them,
    and the session secret they share in the data dir is made once."""
    ports = [free_port() for _ in range(3)]
    processes = [subprocess.Popen(
        [sys.executable, "serve.py", "--port", str(port), "--db", empty_database,
         "--data-dir", str(tmp_path / "data")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1", "API_ACCESS_LOG": "0"})
        for port in ports]
    try:
        for process in processes:
            wait_for_line(process, "listening on", timeout=60)
        for port in ports:
            url = f"http://127.0.0.1:{port}/api/test.hello"
            with urllib.request.urlopen(url, timeout=10) as response:
                assert json.load(response)["api"]["code"] == "100"  # no key: the app answers
        for process in processes:
            process.send_signal(signal.SIGTERM)
        assert [process.wait(timeout=60) for process in processes] == [0, 0, 0]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    open_database(empty_database)
    with db.connection_context():
        assert [row.version for row in SchemaVersion.select()] == [LATEST]
    db.close()
