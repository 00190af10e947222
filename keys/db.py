"""The database: one peewee ``DatabaseProxy`` bound at start-up from a URL (SQLite, PostgreSQL)."""

from __future__ import annotations

import os
from pathlib import Path

from peewee import Database, DatabaseProxy, Model
from playhouse.db_url import connect

db = DatabaseProxy()

_SQLITE_PRAGMAS = {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 10000,
                   "synchronous": "normal"}


class BaseModel(Model):
    """Every table of the project lives in the one proxied database."""

    class Meta:
        database = db


def open_database(url: str, *, max_connections: int = 32) -> Database:
    """Connect the proxy to ``url``; PostgreSQL gets a connection pool, SQLite sane pragmas."""
    if url.startswith(("postgres://", "postgresql://")):
        scheme, rest = url.split("://", 1)
        database = connect(f"{scheme}+pool://{rest}", max_connections=max_connections,
                           stale_timeout=300, timeout=30)
    elif url.startswith("sqlite"):
        database = connect(url, pragmas=_SQLITE_PRAGMAS, check_same_thread=False)
    else:
        database = connect(url)
    db.initialize(database)
    return database


def default_database_url(data_dir: str | None = None, database_url: str | None = None) -> str:
    """The server's database: API_DATABASE_URL, else ``api.sqlite3`` in the data dir."""
    url = database_url or os.environ.get("API_DATABASE_URL", "")
    if url:
        return url
    directory = Path(data_dir or os.environ.get("API_DATA_DIR", "data")).resolve()
    return f"sqlite:///{directory / 'api.sqlite3'}"
