"""The database: one peewee ``DatabaseProxy`` bound at start-up from a URL (SQLite, PostgreSQL)."""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from peewee import (
    SQL,
    AutoField,
    Database,
    DatabaseProxy,
    Model,
    NodeList,
    PostgresqlDatabase,
    SqliteDatabase,
)
from playhouse.db_url import connect
from playhouse.pool import MaxConnectionsExceeded

db = DatabaseProxy()
log = logging.getLogger("keys.db")

# busy_timeout first: every later pragma may already have to wait for another connection.
_SQLITE_PRAGMAS = {"busy_timeout": 10000, "journal_mode": "wal", "foreign_keys": 1,
                   "synchronous": "normal"}
# Every transaction starts as BEGIN IMMEDIATE on SQLite: it takes the write lock at once (waiting
# up to busy_timeout), instead of reading under a shared lock and failing to upgrade it later
# (SQLITE_BUSY_SNAPSHOT in WAL mode, returned at once without any wait).
_SQLITE_LOCK_TYPE = "IMMEDIATE"
_PG_BUSY_CODES = {"40001", "40P01", "55P03"}  # serialization failure, deadlock, lock not available


class IdField(AutoField):
    """A primary key never given twice, even after the row with the highest id is deleted: SQLite
    needs AUTOINCREMENT for that; PostgreSQL's serial sequences never go back anyway."""

    def ddl(self, ctx):
        node = super().ddl(ctx)
        database = self.model._meta.database
        if isinstance(getattr(database, "obj", database), SqliteDatabase):
            return NodeList((node, SQL("AUTOINCREMENT")))
        return node


def as_tuples(query: Any) -> Iterable[tuple[Any, ...]]:
    """``query``, a ``.tuples()`` select, as what it yields: peewee-stubs type ``.tuples()`` as the
    model query it came from, whose rows would be model instances."""
    return cast("Iterable[tuple[Any, ...]]", query)


def locked(query: Any, model: Any) -> Any:
    """``query`` locking the ``model`` rows it reads until the transaction ends (PostgreSQL).

    Writers to one row then go one after another instead of interleaving into a lost update,
    a unique or a foreign-key violation. SQLite needs nothing: its transactions begin IMMEDIATE,
    one writer at a time. Outside a transaction there is nothing to hold the lock for.
    """
    if db.for_update and db.in_transaction():
        return query.for_update(of=model)
    return query


@contextmanager
def serialised(*names: str) -> Iterator[None]:
    """A transaction that holds ``names`` until it ends: another one asking for any of them, in
    any process, waits. A check and the insert it allows (a quota, a throttle) then happen as one.

    PostgreSQL: a transaction-level advisory lock per name (a 64-bit hash of it), taken in sorted
    order so two callers never deadlock on each other. SQLite: nothing more is needed, since every
    transaction begins IMMEDIATE (``lock_type``): one writer at a time, across processes too.
    """
    with db.atomic():
        if isinstance(db.obj, PostgresqlDatabase):
            for number in sorted({_lock_number(name) for name in names}):
                db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (number,))
        yield


def database_time() -> float:
    """The database's clock in UNIX seconds: PostgreSQL's ``clock_timestamp()``, so processes on
    several hosts measure leases alike however their own clocks drift. SQLite's file lives on one
    host, whose clock is the database's: ``time.time()`` (no query)."""
    if isinstance(db.obj, PostgresqlDatabase):
        return float(db.execute_sql("SELECT EXTRACT(EPOCH FROM clock_timestamp())").fetchone()[0])
    return time.time()


def _lock_number(name: str) -> int:
    """The advisory lock number (a signed bigint) for ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8", "surrogatepass")).digest()[:8],
                          "big", signed=True)


def is_busy(error: BaseException) -> bool:
    """Whether ``error`` says the database is busy (locked, deadlocked, out of pooled connections):
    worth a retry later, never a bug of the request."""
    seen: set[int] = set()
    todo: list[object] = [error]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, MaxConnectionsExceeded):
            return True
        if isinstance(item, sqlite3.OperationalError):
            code = getattr(item, "sqlite_errorcode", None)  # set when sqlite3 raised it itself
            if code is None and ("locked" in str(item) or "busy" in str(item)):
                return True
            if code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                return True
        if getattr(item, "pgcode", None) in _PG_BUSY_CODES:
            return True
        # peewee wraps the driver's exception: the original is its first argument (or ``orig``
        # or the cause). Not the context: an unrelated error raised while handling a busy one is
        # a bug of its own, not a reason to answer "retry later".
        todo.extend([getattr(item, "orig", None), *item.args[:1], item.__cause__])
    return False


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
        _private_sqlite_files(urlsplit(url).path[1:])
        database = connect(url, pragmas=_SQLITE_PRAGMAS, check_same_thread=False,
                           lock_type=_SQLITE_LOCK_TYPE)
    else:
        database = connect(url)
    db.initialize(database)
    return database


def _private_sqlite_files(path: str) -> None:
    """Create the SQLite file 0600 before SQLite does (it would follow the umask, 0644 as a rule):
    it holds every API secret. SQLite gives its -wal and -shm files the database's mode. Files an
    older version left readable by others are narrowed to 0600, and the change is logged."""
    if not path or path == ":memory:":
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return
    except FileExistsError:
        pass
    for name in (path, path + "-wal", path + "-shm"):
        try:
            mode = os.stat(name).st_mode & 0o777
        except FileNotFoundError:
            continue
        if mode & 0o077:
            os.chmod(name, 0o600)
            log.warning("%s was readable by other users (mode %03o); it is now 0600", name, mode)


def private_directory(path: Path) -> None:
    """Create ``path`` (and missing parents) for this user alone (0700). An existing directory is
    left as it is, with a warning when others may enter it: it may be shared on purpose."""
    try:
        path.mkdir(mode=0o700, parents=True)
        return
    except FileExistsError:
        pass
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        log.warning("data directory %s is open to other users (mode %03o); chmod 700 it unless "
                    "that is meant", path, mode)


def default_database_url(data_dir: str | None = None, database_url: str | None = None) -> str:
    """The server's database: API_DATABASE_URL, else ``api.sqlite3`` in the data dir."""
    url = database_url or os.environ.get("API_DATABASE_URL", "")
    if url:
        return url
    directory = Path(data_dir or os.environ.get("API_DATA_DIR", "data")).resolve()
    return f"sqlite:///{directory / 'api.sqlite3'}"
