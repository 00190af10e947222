"""The schema history: version 1's tables, then every numbered migration in order, must end at
exactly the tables today's models create on a fresh database. A model changed without a migration
step (a column, a type, a default, an index, a foreign key, a new table) fails here, naming the
table and what differs.

Version 1 is tests/golden/schema-v1.sqlite3 on SQLite (written by that code, rows and all) and
tests/golden/schema-v1.postgresql.sql on PostgreSQL (the DDL that code ran); make_schema_v1.py in
that folder remakes both. The steps run as the runner runs them (api/runtime/migrations.py: an
unstamped database gets its version table, then each step in one transaction under the migration
lock), but nothing creates missing tables afterwards: a new model needs its own step.

What is compared is what the backend reports through peewee's introspection (``get_columns``,
``get_indexes``, ``get_foreign_keys``), plus on SQLite whether the table's key is AUTOINCREMENT.
Column order is not compared: PostgreSQL's ALTER TABLE can only add a column at the end.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from peewee import Database, SqliteDatabase

from api.runtime import migrations
from api.runtime.migrations import SchemaVersion
from api.runtime.schema import create_schema
from keys.db import db, open_database
from tests.conftest import TEST_DATABASE_URL

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
MISSING = "(missing)"


def describe(database: Database) -> dict[str, dict[str, Any]]:
    """Every table as the backend reports it: columns, indexes and foreign keys by name."""
    tables: dict[str, dict[str, Any]] = {}
    for table in database.get_tables():
        tables[table] = {
            "columns": {c.name: {"type": c.full_type, "null": c.null, "primary key": c.primary_key,
                                 "default": c.default, "identity": c.identity}
                        for c in database.get_columns(table)},
            "indexes": {i.name: {"columns": i.columns, "unique": i.unique}
                        for i in database.get_indexes(table)},
            "foreign keys": {f.column: {"references": f"{f.dest_table}.{f.dest_column}",
                                        "on delete": f.on_delete, "on update": f.on_update}
                             for f in database.get_foreign_keys(table)},
        }
        if isinstance(database, SqliteDatabase):
            (sql,) = database.execute_sql("SELECT sql FROM sqlite_master WHERE type = 'table' "
                                          "AND name = ?", (table,)).fetchone()
            tables[table]["autoincrement"] = "AUTOINCREMENT" in sql.upper()
    return tables


def differences(fresh: dict, migrated: dict, path: str = "") -> list[str]:
    """One line per leaf that differs, e.g. ``docs / columns / title / type: …``."""
    lines = []
    for key in sorted(set(fresh) | set(migrated)):
        want, got = fresh.get(key, MISSING), migrated.get(key, MISSING)
        if isinstance(want, dict) and isinstance(got, dict):
            lines += differences(want, got, f"{path}{key} / ")
        elif want != got:
            lines.append(f"{path}{key}: the models make {want!r}, the migrations {got!r}")
    return lines


def assert_same(fresh: dict, migrated: dict) -> None:
    lines = differences(fresh, migrated)
    assert not lines, ("a model differs from what the migrations make: add a step to "
                       "api/runtime/migrations.py (CONTRIBUTING.md)\n" + "\n".join(lines))


def migrate_from_version_1(make_version_1: Callable[[Database], None]) -> dict[str, Any]:
    """Version 1 made by ``make_version_1`` in the bound database, then every step in order."""
    database = db.obj
    with db.connection_context():
        make_version_1(database)
        assert not database.table_exists(SchemaVersion._meta.table_name)
        SchemaVersion.create_table()  # what the runner does first on an unstamped database
        for version, step in enumerate(migrations.STEPS, start=2):
            with migrations._exclusive(database):
                step(database)
                SchemaVersion.insert(version=version, applied_at=0).execute()
        return describe(database)


def fresh_schema() -> dict[str, Any]:
    """The tables the current models make on an empty database (what a first start does)."""
    assert create_schema() == migrations.LATEST
    with db.connection_context():
        return describe(db.obj)


def run_postgresql_ddl(database: Database) -> None:
    """Replay the golden DDL of version 1 (one statement per line, ``--`` comments)."""
    for line in (GOLDEN / "schema-v1.postgresql.sql").read_text().splitlines():
        if line.strip() and not line.startswith("--"):
            database.execute_sql(line.rstrip().removesuffix(";"))


@pytest.fixture
def scratch_postgresql() -> Iterator[Callable[[str], str]]:
    """``scratch(name)``: the URL of an empty PostgreSQL database of this test's own, beside
    TEST_DATABASE_URL's (as conftest's ``postgres_url``), dropped afterwards."""
    import psycopg2

    admin = psycopg2.connect(TEST_DATABASE_URL)
    admin.autocommit = True
    made: list[str] = []

    def scratch(name: str) -> str:
        full = f"apitest_{os.getpid()}_{name}"
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {full}")
            cursor.execute(f"CREATE DATABASE {full}")
        made.append(full)
        return f"{TEST_DATABASE_URL.rsplit('/', 1)[0]}/{full}"

    try:
        yield scratch
    finally:
        with admin.cursor() as cursor:  # FORCE: connections still open are ended
            for full in made:
                cursor.execute(f"DROP DATABASE IF EXISTS {full} WITH (FORCE)")
        admin.close()


@pytest.mark.skipif(bool(TEST_DATABASE_URL), reason="the SQLite half (TEST_DATABASE_URL is set)")
def test_sqlite_version_1_plus_every_migration_is_todays_schema(tmp_path):
    version_1 = tmp_path / "v1.sqlite3"
    shutil.copy(GOLDEN / "schema-v1.sqlite3", version_1)
    open_database(f"sqlite:///{version_1}")
    migrated = migrate_from_version_1(lambda database: None)  # the golden file is version 1
    open_database(f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    fresh = fresh_schema()
    ids = [name for name in fresh  # docs_fts*: the full-text index (FTS5), keyed by doc id
           if name != SchemaVersion._meta.table_name
           and not name.startswith(("sqlite_", "docs_fts"))]
    assert ids and all(fresh[name]["autoincrement"] for name in ids)  # ids never given twice
    assert_same(fresh, migrated)


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="the PostgreSQL half needs TEST_DATABASE_URL")
def test_postgresql_version_1_plus_every_migration_is_todays_schema(scratch_postgresql):
    previous = db.obj
    try:
        version_1 = open_database(scratch_postgresql("v1"))
        migrated = migrate_from_version_1(run_postgresql_ddl)
        version_1.close_all()
        fresh = open_database(scratch_postgresql("fresh"))
        described = fresh_schema()
        fresh.close_all()
    finally:
        db.initialize(previous)  # the suite's own database again
    assert_same(described, migrated)


def test_differences_name_the_table_and_what_differs():
    fresh = {"docs": {"columns": {"title": {"type": "VARCHAR(255)", "null": False},
                                  "rating": {"type": "INTEGER", "null": False}}},
             "faves": {"columns": {}}}
    migrated = {"docs": {"columns": {"title": {"type": "VARCHAR(200)", "null": False}}}}
    assert differences(fresh, migrated) == [
        "docs / columns / rating: the models make {'type': 'INTEGER', 'null': False}, "
        "the migrations '(missing)'",
        "docs / columns / title / type: the models make 'VARCHAR(255)', the migrations "
        "'VARCHAR(200)'",
        "faves: the models make {'columns': {}}, the migrations '(missing)'"]
