"""PostgreSQL ``LISTEN/NOTIFY`` for every process: ``notify`` sends a message on a channel in the
current transaction (delivered at its commit, never for a change rolled back); ``Notices``, a
background worker, listens on every channel subscribed to over one connection of its own per
process (not the pool's) and hands each message to its channel's handler.

After a lost connection it reconnects (every ``RETRY_SECONDS``) and calls every handler with
``None``: messages sent meanwhile are lost, so a handler then catches up on whatever it watches.
SQLite (one host) has no such messages: ``notify`` does nothing, ``Notices`` starts no thread,
and each subscriber polls instead (``keys.changes``, the upload queue).
"""

from __future__ import annotations

import logging
import select
import threading
from collections.abc import Callable
from typing import Any

from peewee import PostgresqlDatabase

from keys.db import db

log = logging.getLogger("keys.notices")

WAIT_SECONDS = 0.5  # how long the listener waits for a message before it looks at its stop flag
RETRY_SECONDS = 1.0  # after a lost listener connection
_KEEPALIVE = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
              "keepalives_count": 3}  # a listener whose server vanished finds out in ~25 s

Handler = Callable[[str | None], None]  # a message's payload; None after a (re)connection


def listening() -> bool:
    """Whether the database delivers notifications (PostgreSQL)."""
    return isinstance(db.obj, PostgresqlDatabase)


def notify(channel: str, payload: str) -> None:
    """Send ``payload`` to every process listening on ``channel`` (PostgreSQL; at the commit of
    the transaction this runs in). Nothing on SQLite."""
    if listening():
        db.execute_sql("SELECT pg_notify(%s, %s)", (channel, payload))


class Watcher:
    """A background worker: ``start`` runs ``_run`` in a daemon thread (when ``wanted``) until
    ``stop``, which waits for it to see ``_stop`` (a fraction of a second)."""

    name = "watcher"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def wanted(self) -> bool:
        """Whether this database needs the thread."""
        return True

    def start(self) -> None:
        if self._thread is not None or not self.wanted():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        raise NotImplementedError


class Notices(Watcher):
    """One listener connection per process for every channel subscribed to (``subscribe``
    before ``start``); a thread only on PostgreSQL with at least one subscriber."""

    name = "notices"

    def __init__(self) -> None:
        super().__init__()
        self._handlers: dict[str, Handler] = {}

    def subscribe(self, channel: str, handler: Handler) -> None:
        """Call ``handler`` with each message on ``channel`` (a plain identifier)."""
        self._handlers[channel] = handler

    def wanted(self) -> bool:
        return bool(self._handlers) and listening()

    def _run(self) -> None:
        while not self._stop.is_set():
            connection: Any = None
            try:
                connection = self._connect()
                for handler in self._handlers.values():
                    handler(None)  # whatever was sent while nobody listened
                while not self._stop.is_set():
                    if select.select([connection], [], [], WAIT_SECONDS)[0]:
                        connection.poll()
                        for note in connection.notifies:
                            self._handlers[note.channel](note.payload)
                        connection.notifies.clear()
            except Exception as error:  # the type only: a connection error may show the URL
                log.warning("notification listener lost its connection (%s); reconnecting",
                            type(error).__name__)
                self._stop.wait(RETRY_SECONDS)
            finally:
                if connection is not None:
                    connection.close()

    def _connect(self) -> Any:
        """A connection of its own, autocommit, listening on every subscribed channel."""
        import psycopg2

        database = db.obj
        connection = psycopg2.connect(dbname=database.database,
                                      **{**database.connect_params, **_KEEPALIVE})
        connection.autocommit = True
        with connection.cursor() as cursor:
            for channel in self._handlers:
                cursor.execute(f"LISTEN {channel}")
        return connection
