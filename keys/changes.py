"""Key changes seen by every process: a change made anywhere (``python -m keys``, the console of
another process) empties the matching ``KeyCache`` entries within about a second, instead of
when their TTL runs out (docs/protocol-choices.md, "Several processes").

Every change to a key writes an audit line (``store.audit``), so the audit list is the signal:

- PostgreSQL: ``audit`` sends ``NOTIFY api_key_changes, '<key>'`` in the change's transaction
  (delivered at its commit); ``KeyWatch`` listens on a connection of its own in a thread and
  forgets that key. After a lost connection it reconnects and forgets every key (notifications
  sent meanwhile are lost).
- SQLite (one host): ``KeyWatch`` reads the newest audit id every ``POLL_SECONDS``, one indexed
  look-up, and forgets every key when it grew. AUTOINCREMENT ids commit in order there (one writer
  at a time), so no change hides behind a larger id.

The cache's TTL stays as the last resort. ``KeyWatch`` is a background worker: ``serve.py``
starts and stops it; importing this module starts nothing.
"""

from __future__ import annotations

import logging
import select
import threading
from collections.abc import Callable
from typing import Any

from peewee import PostgresqlDatabase, fn

from keys.db import db
from keys.models import KeyAudit

log = logging.getLogger("keys.changes")

CHANNEL = "api_key_changes"
POLL_SECONDS = 0.5  # SQLite: how often the newest audit id is read
RETRY_SECONDS = 1.0  # after a failed look-up or a lost listener connection
_KEEPALIVE = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
              "keepalives_count": 3}  # a listener whose server vanished finds out in ~25 s


def notify_change(key: str) -> None:
    """Tell every process's ``KeyWatch`` that ``key`` changed (PostgreSQL; at the commit of the
    transaction this runs in). SQLite needs no message: the audit line is the signal."""
    if isinstance(db.obj, PostgresqlDatabase):
        db.execute_sql("SELECT pg_notify(%s, %s)", (CHANNEL, key))


class KeyWatch:
    """The background worker that forgets cached keys changed by any process: ``invalidate`` is
    ``KeyCache.invalidate`` (one key, or None for all)."""

    def __init__(self, invalidate: Callable[[str | None], None]) -> None:
        self.invalidate = invalidate
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Listen (PostgreSQL) or poll (SQLite) in a daemon thread."""
        run = self._listen if isinstance(db.obj, PostgresqlDatabase) else self._poll
        self._stop.clear()
        self._thread = threading.Thread(target=run, name="key-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the thread (within ``POLL_SECONDS``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _poll(self) -> None:
        newest: int | None = None
        try:
            while not self._stop.is_set():
                try:
                    seen = KeyAudit.select(fn.MAX(KeyAudit.id)).scalar() or 0
                except Exception as error:  # the database busy or gone: try again, TTL meanwhile
                    log.warning("reading key changes failed (%s)", type(error).__name__)
                    self._stop.wait(RETRY_SECONDS)
                    continue
                if newest is not None and seen != newest:
                    self.invalidate(None)
                newest = seen
                self._stop.wait(POLL_SECONDS)
        finally:
            db.close()

    def _listen(self) -> None:
        while not self._stop.is_set():
            connection: Any = None
            try:
                connection = self._connect()
                self.invalidate(None)  # whatever changed while nobody listened
                while not self._stop.is_set():
                    if select.select([connection], [], [], POLL_SECONDS)[0]:
                        connection.poll()
                        for note in connection.notifies:
                            self.invalidate(note.payload)
                        connection.notifies.clear()
            except Exception as error:  # the type only: a connection error may show the URL
                log.warning("key-change listener lost its connection (%s); reconnecting",
                            type(error).__name__)
                self._stop.wait(RETRY_SECONDS)
            finally:
                if connection is not None:
                    connection.close()

    def _connect(self) -> Any:
        """A connection of its own (not the pool's), autocommit, listening on ``CHANNEL``."""
        import psycopg2

        database = db.obj
        connection = psycopg2.connect(dbname=database.database,
                                      **{**database.connect_params, **_KEEPALIVE})
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f"LISTEN {CHANNEL}")
        return connection
