"""Numbered schema migrations, run at every start by ``api.runtime.schema.create_schema``.

The ``schema_version`` table holds one row per version reached. Version 1 is the schema the code
made before this module existed (no ``schema_version`` table yet); each later version is one
function in ``STEPS``, run inside the same transaction as its stamp. A fresh database is created at
the latest version directly (the models' tables, then the full-text structures of
api/models/search.py, which no model declares) and stamped; a database already at the latest
version costs two reads and no lock; a database newer than the code is refused with
``SchemaTooNew``.

Two processes starting together on one database migrate one after the other: the migration runs
under BEGIN IMMEDIATE on SQLite and ``pg_advisory_xact_lock`` on PostgreSQL, and the version is read
again under that lock.

Rules for a new step: it works from the previous version's tables as they are (SQL, not today's
models), keeps every row, and tolerates a table that is missing or already in its new form: the
``keys`` CLI may have created its tables at the latest definition in a database nobody stamped.
A new table needs a step as well (``database.create_tables([...])`` is enough).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager

from peewee import Database, IntegerField, PostgresqlDatabase, SqliteDatabase, fn

from api.models import groups, posts, search
from api.models.docs import AlbumFave, DocFave, Folder, FolderAlbum, Media
from keys.db import BaseModel, db

log = logging.getLogger("api.migrations")

_ADVISORY_LOCK = 0x6970_6572  # "iper": the one PostgreSQL advisory lock migrations take
# The tables of version 1 (schema as the first releases made it), all with an "id" primary key.
V1_TABLES = ("users", "api_keys", "usage_counters", "frobs", "tokens", "relations", "docs",
             "thumbs", "tags", "notes", "comments", "doc_visits", "albums", "album_docs",
             "album_visits", "upload_tickets", "web_sessions", "login_failures")


class SchemaTooNew(RuntimeError):
    """The database was migrated by newer code than this one; starting could damage it."""


class SchemaOutOfDate(RuntimeError):
    """The database is older than the code (or empty), and this process was told not to migrate."""


class SchemaVersion(BaseModel):
    """One row per schema version this database reached, with when (UNIX seconds)."""

    version = IntegerField(primary_key=True)
    applied_at = IntegerField()

    class Meta:
        table_name = "schema_version"


# -- the steps: STEPS[n - 2] brings version n - 1 to version n ----------------------------------

def _2_ids_never_reused(database: Database) -> None:
    """Ids are never given twice. SQLite reuses the highest id after a delete unless the key is
    AUTOINCREMENT, which needs a rebuild of each table; PostgreSQL's sequences never go back."""
    if not isinstance(database, SqliteDatabase):
        return
    for table in V1_TABLES:
        _rebuild_with_autoincrement(database, table)


def _rebuild_with_autoincrement(database: Database, table: str) -> None:
    """Copy ``table`` into a new one whose id is AUTOINCREMENT (same columns, rows, indexes);
    sqlite_sequence ends at the highest id copied, so the next id is above every id present."""
    row = database.execute_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                               (table,)).fetchone()
    primary_key = '"id" INTEGER NOT NULL PRIMARY KEY'
    if row is None or "AUTOINCREMENT" in row[0].upper():
        return  # missing (the keys CLI made only its own tables), or already rebuilt
    create, new = row[0], f"{table}__v2"
    if primary_key not in create:
        raise RuntimeError(f"migration 2: table {table} has no {primary_key}")
    indexes = [sql for (sql,) in database.execute_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
        (table,))]
    database.execute_sql(create
                         .replace(f'CREATE TABLE "{table}"', f'CREATE TABLE "{new}"', 1)
                         .replace(primary_key, primary_key + " AUTOINCREMENT", 1))
    database.execute_sql(f'INSERT INTO "{new}" SELECT * FROM "{table}"')
    database.execute_sql(f'DROP TABLE "{table}"')
    database.execute_sql(f'ALTER TABLE "{new}" RENAME TO "{table}"')
    for sql in indexes:
        database.execute_sql(sql)


def _3_key_rotation_audit_admin(database: Database) -> None:
    """Key management on the web (issue 9): a rotated key keeps its previous secret and when that
    stops signing (``api_keys.previous_secret``, ``previous_expires_at``); every change to a key
    is listed in ``key_audit``; ``users.is_admin`` marks site administrators. Columns already
    there (a database the keys CLI made at this version) are left as they are."""
    sqlite = isinstance(database, SqliteDatabase)
    boolean = "INTEGER" if sqlite else "BOOLEAN"
    _add_column(database, "api_keys", "previous_secret", "VARCHAR(64) NOT NULL DEFAULT ''")
    _add_column(database, "api_keys", "previous_expires_at", "INTEGER NOT NULL DEFAULT 0")
    _add_column(database, "users", "is_admin", f"{boolean} NOT NULL DEFAULT FALSE")
    if database.table_exists("key_audit"):
        return
    key = ('"id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT' if sqlite
           else '"id" SERIAL NOT NULL PRIMARY KEY')
    database.execute_sql(
        f'CREATE TABLE "key_audit" ({key}, "api_key_id" INTEGER NOT NULL, '
        '"actor" VARCHAR(64) NOT NULL, "action" TEXT NOT NULL, "at" INTEGER NOT NULL, '
        'FOREIGN KEY ("api_key_id") REFERENCES "api_keys" ("id") ON DELETE CASCADE)')
    database.execute_sql('CREATE INDEX IF NOT EXISTS "keyaudit_api_key_id" '
                         'ON "key_audit" ("api_key_id")')


def _4_request_log(database: Database) -> None:
    """The request log (issue 9 item 4): the newest failed calls of each key, bounded per key by
    the flusher (api/runtime/request_log.py). A table already there is left as it is."""
    if database.table_exists("request_log"):
        return
    sqlite = isinstance(database, SqliteDatabase)
    key = ('"id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT' if sqlite
           else '"id" SERIAL NOT NULL PRIMARY KEY')
    database.execute_sql(
        f'CREATE TABLE "request_log" ({key}, "api_key" VARCHAR(64) NOT NULL, '
        '"at" INTEGER NOT NULL, "method" VARCHAR(64) NOT NULL, "code" INTEGER NOT NULL, '
        '"message" TEXT NOT NULL, "client_addr" VARCHAR(64) NOT NULL, '
        '"format" VARCHAR(16) NOT NULL, "signed" TEXT NOT NULL, "api_sig" VARCHAR(64) NOT NULL)')
    database.execute_sql('CREATE INDEX IF NOT EXISTS "requestlogentry_api_key_id" '
                         'ON "request_log" ("api_key", "id")')


def _5_usage_latency_users(database: Database) -> None:
    """Statistics per key (issue 9 item 3): latency histograms beside the usage counters
    (``usage_latency``: calls per key, method, hour, code and latency bucket) and the members whose
    tokens called per key and day (``usage_users``). Tables already there are left as they are."""
    sqlite = isinstance(database, SqliteDatabase)
    key = ('"id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT' if sqlite
           else '"id" SERIAL NOT NULL PRIMARY KEY')
    if not database.table_exists("usage_latency"):
        database.execute_sql(
            f'CREATE TABLE "usage_latency" ({key}, "api_key" VARCHAR(32) NOT NULL, '
            '"method" VARCHAR(64) NOT NULL, "hour" INTEGER NOT NULL, "code" INTEGER NOT NULL, '
            '"bucket" INTEGER NOT NULL, "calls" INTEGER NOT NULL)')
        database.execute_sql(
            'CREATE UNIQUE INDEX IF NOT EXISTS "usagelatency_api_key_method_hour_code_bucket" '
            'ON "usage_latency" ("api_key", "method", "hour", "code", "bucket")')
        database.execute_sql('CREATE INDEX IF NOT EXISTS "usagelatency_api_key_hour" '
                             'ON "usage_latency" ("api_key", "hour")')
    if not database.table_exists("usage_users"):
        database.execute_sql(
            f'CREATE TABLE "usage_users" ({key}, "api_key" VARCHAR(32) NOT NULL, '
            '"day" INTEGER NOT NULL, "user_id" INTEGER NOT NULL)')
        database.execute_sql('CREATE UNIQUE INDEX IF NOT EXISTS "usageuser_api_key_day_user_id" '
                             'ON "usage_users" ("api_key", "day", "user_id")')


def _6_hmac_oauth_limits_tickets(database: Database) -> None:
    """Issue 10: per-key switches (``require_hmac``, ``legacy_oauth``) and rate limit; the OAuth
    access token's secret on ``tokens``; OAuth request tokens; used nonces (HMAC and OAuth, when
    no Redis holds them); the names an upload ticket will write, its worker's lease, its
    claims so far and its claim's token (issue 11), and an index of the ended tickets whose files
    are still to be removed. Columns and tables already there are left as they are."""
    sqlite = isinstance(database, SqliteDatabase)
    boolean = "INTEGER" if sqlite else "BOOLEAN"
    key = ('"id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT' if sqlite
           else '"id" SERIAL NOT NULL PRIMARY KEY')
    _add_column(database, "api_keys", "require_hmac", f"{boolean} NOT NULL DEFAULT FALSE")
    _add_column(database, "api_keys", "legacy_oauth", f"{boolean} NOT NULL DEFAULT FALSE")
    _add_column(database, "api_keys", "rate_limit", "VARCHAR(64) NOT NULL DEFAULT ''")
    _add_column(database, "tokens", "oauth_secret", "VARCHAR(64) NOT NULL DEFAULT ''")
    _add_column(database, "upload_tickets", "stored_names", "TEXT NOT NULL DEFAULT ''")
    _add_column(database, "upload_tickets", "lease_until", "INTEGER NOT NULL DEFAULT 0")
    _add_column(database, "upload_tickets", "attempts", "INTEGER NOT NULL DEFAULT 0")
    _add_column(database, "upload_tickets", "claim_token", "VARCHAR(32) NOT NULL DEFAULT ''")
    if database.table_exists("upload_tickets"):
        database.execute_sql('CREATE INDEX IF NOT EXISTS "uploadticket_removals" '
                             'ON "upload_tickets" ("id") WHERE ("stored_names" != \'\')')
    if not database.table_exists("oauth_request_tokens"):
        perms = "".join(f'"perm_{area}" VARCHAR(8) NOT NULL, '
                        for area in ("doc", "blog", "post", "network", "profile"))
        database.execute_sql(
            f'CREATE TABLE "oauth_request_tokens" ({key}, "token_hash" VARCHAR(64) NOT NULL, '
            '"secret" VARCHAR(64) NOT NULL, "api_key" VARCHAR(32) NOT NULL, '
            '"callback" VARCHAR(2048) NOT NULL, "verifier" VARCHAR(64) NOT NULL, '
            '"state" VARCHAR(10) NOT NULL, "user_id" INTEGER, ' + perms +
            '"created_at" INTEGER NOT NULL, "expires_at" INTEGER NOT NULL, '
            'FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON DELETE CASCADE)')
        database.execute_sql('CREATE UNIQUE INDEX IF NOT EXISTS "oauthrequesttoken_token_hash" '
                             'ON "oauth_request_tokens" ("token_hash")')
        database.execute_sql('CREATE INDEX IF NOT EXISTS "oauthrequesttoken_api_key" '
                             'ON "oauth_request_tokens" ("api_key")')
        database.execute_sql('CREATE INDEX IF NOT EXISTS "oauthrequesttoken_user_id" '
                             'ON "oauth_request_tokens" ("user_id")')
    if not database.table_exists("used_nonces"):
        database.execute_sql(
            f'CREATE TABLE "used_nonces" ({key}, "scope" VARCHAR(8) NOT NULL, '
            '"api_key" VARCHAR(32) NOT NULL, "nonce" VARCHAR(64) NOT NULL, '
            '"expires_at" INTEGER NOT NULL)')
        database.execute_sql('CREATE UNIQUE INDEX IF NOT EXISTS "usednonce_scope_api_key_nonce" '
                             'ON "used_nonces" ("scope", "api_key", "nonce")')
        database.execute_sql('CREATE INDEX IF NOT EXISTS "usednonce_expires_at" '
                             'ON "used_nonces" ("expires_at")')


# Migration 7's indexes, named as the models name them (api/models/docs.py).
_SEARCH_INDEXES = (("doc_posted_at_id", "docs", ("posted_at", "id")),
                   ("doc_created_id", "docs", ("created", "id")),
                   ("doc_faves_visits_id", "docs", ("faves", "visits", "id")),
                   ("doc_license_posted_at_id_is_public_safety", "docs",
                    ("license", "posted_at", "id", "is_public", "safety")),
                   ("doc_media_posted_at_id_is_public_safety", "docs",
                    ("media", "posted_at", "id", "is_public", "safety")),
                   ("tag_norm_type_doc_id", "tags", ("norm", "type", "doc_id")),
                   ("docvisit_visited_at_doc_id", "doc_visits", ("visited_at", "doc_id")))


def _7_full_text_search(database: Database) -> None:
    """Search that scales (issue 12): the full-text index of titles, descriptions and keyword
    tags, its triggers and its backfill (api/models/search.py: FTS5 on SQLite, a tsvector column
    under GIN on PostgreSQL, with two covering indexes for radius searches and a member's
    docs), indexes for doc.search's sorts, filters and tags, and the week's visits for
    explore.docs.getPopular (issue 13). Without the docs or tags table
    (a keys CLI database) the index is made after the tables (``migrate``)."""
    for name, table, columns in _SEARCH_INDEXES:
        if database.table_exists(table):
            listed = ", ".join(f'"{column}"' for column in columns)
            database.execute_sql(f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ({listed})')
    _install_search(database)


def _8_faves_folders_icons(database: Database) -> None:
    """Issue 13: faves of docs and albums, folders of albums, and a member's own icon and
    place (columns of ``users``); issue 14: groups and blog posts (api/models/groups.py,
    posts.py); issue 15: the web renditions of video and audio docs (``medias``). New tables
    and columns only; nothing existing changes."""
    _add_column(database, "users", "icon_secret", "VARCHAR(16) NOT NULL DEFAULT ''")
    _add_column(database, "users", "town", "VARCHAR(64) NOT NULL DEFAULT ''")
    _add_column(database, "users", "country", "VARCHAR(64) NOT NULL DEFAULT ''")
    _add_column(database, "users", "icon_at", "INTEGER NOT NULL DEFAULT 0")
    if database.table_exists("docs") and database.table_exists("albums"):
        database.create_tables([DocFave, AlbumFave, Folder, FolderAlbum, Media, *groups.MODELS,
                                *posts.MODELS], safe=True)


def _add_column(database: Database, table: str, column: str, definition: str) -> None:
    """``ALTER TABLE … ADD COLUMN`` unless the table lacks or already has it."""
    if not database.table_exists(table):
        return
    if any(c.name == column for c in database.get_columns(table)):
        return
    database.execute_sql(f'ALTER TABLE "{table}" ADD COLUMN "{column}" {definition}')


STEPS: tuple[Callable[[Database], None], ...] = (_2_ids_never_reused, _3_key_rotation_audit_admin,
                                                 _4_request_log, _5_usage_latency_users,
                                                 _6_hmac_oauth_limits_tickets,
                                                 _7_full_text_search, _8_faves_folders_icons)
LATEST = len(STEPS) + 1


# -- the runner ---------------------------------------------------------------------------------

def migrate(models: Sequence[type[BaseModel]]) -> int:
    """Bring the open database to ``LATEST`` (``models`` make a fresh one); the version reached."""
    database = db.obj
    version = _version(database)
    if version == LATEST:
        return version  # the usual start: two reads, no lock, no write
    _refuse_newer(version)
    with _exclusive(database):
        version = _version(database)  # again, under the lock: another process may have done it
        if version == LATEST:
            return version
        _refuse_newer(version)
        if version is None and not any(database.table_exists(m._meta.table_name)
                                       for m in models):
            database.create_tables([*models, SchemaVersion])
            _install_search(database)  # what the models cannot declare
            _stamp(LATEST)
            log.info("created the schema at version %d", LATEST)
            return LATEST
        if version is None:  # made by the code before migrations existed
            SchemaVersion.create_table()
            version = 1
        for number in range(version + 1, LATEST + 1):
            log.info("migrating the schema to version %d", number)
            STEPS[number - 2](database)
            _stamp(number)
        database.create_tables(models, safe=True)  # tables a partial (keys CLI) database lacks
        if not search.installed(database):  # the docs table was among them
            _install_search(database)
        _check_foreign_keys(database)
    return LATEST


def _install_search(database: Database) -> None:
    if database.table_exists("docs") and database.table_exists("tags"):
        search.install(database)


def check_current() -> int:
    """``LATEST`` when the open database is at it; ``SchemaOutOfDate`` when it is older or empty
    (a start told not to migrate), ``SchemaTooNew`` when newer. Nothing is written."""
    version = _version(db.obj)
    _refuse_newer(version)
    if version != LATEST:
        found = "has no schema yet" if version is None else f"schema is version {version}"
        raise SchemaOutOfDate(f"the database {found}, this code needs version {LATEST}: run "
                              f"`python -m api migrate` (or serve.py --migrate-only) first")
    return version


def _version(database: Database) -> int | None:
    """The stamped version, or None when the database has no version table."""
    if not database.table_exists(SchemaVersion._meta.table_name):
        return None
    return SchemaVersion.select(fn.MAX(SchemaVersion.version)).scalar()


def _refuse_newer(version: int | None) -> None:
    if version is not None and version > LATEST:
        raise SchemaTooNew(f"the database schema is version {version}, but this code knows "
                           f"versions up to {LATEST} only: run the newer code (or restore a "
                           f"backup made before the upgrade)")


def _stamp(version: int) -> None:
    SchemaVersion.insert(version=version, applied_at=int(time.time())).execute()


def _check_foreign_keys(database: Database) -> None:
    """After SQLite rebuilt tables with its checks off: every reference must still hold."""
    if isinstance(database, SqliteDatabase):
        broken = database.execute_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"migration left broken foreign keys: {broken[:5]}")


@contextmanager
def _exclusive(database: Database):
    """One transaction that only one process at a time holds. SQLite: BEGIN IMMEDIATE (the
    database's lock type), with foreign keys off around it, since a table rebuild drops tables
    that others reference (the pragma cannot change inside a transaction). PostgreSQL: an
    advisory lock released with the transaction."""
    sqlite = isinstance(database, SqliteDatabase)
    if sqlite:
        database.execute_sql("PRAGMA foreign_keys = OFF")
    try:
        with database.atomic("IMMEDIATE") if sqlite else database.atomic():
            if isinstance(database, PostgresqlDatabase):
                database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_LOCK,))
            yield
    finally:
        if sqlite:
            database.execute_sql("PRAGMA foreign_keys = ON")
