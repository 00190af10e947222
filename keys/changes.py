"""Key changes seen by every process: a change made anywhere (``python -m keys``, the console of
another process) empties the matching ``KeyCache`` entries within about a second, instead of
when their TTL runs out (docs/protocol-choices.md, "Several processes").

Every change to a key writes an audit line (``store.audit``), so the audit list is the signal:

- PostgreSQL: ``audit`` sends ``NOTIFY api_key_changes, '<key>'`` in the change's transaction
  (delivered at its commit); the process's one listener (``keys.notices.Notices``, shared with
  the upload queue) hands it to ``KeyWatch``, which forgets that key. After a lost connection the
  listener reconnects and ``KeyWatch`` forgets every key (notifications sent meanwhile are lost).
- SQLite (one host): ``KeyWatch`` reads the newest audit id every ``POLL_SECONDS``, one indexed
  look-up, and forgets every key when it grew. AUTOINCREMENT ids commit in order there (one writer
  at a time), so no change hides behind a larger id.

The cache's TTL stays as the last resort. ``KeyWatch`` and ``Notices`` are background workers:
``serve.py`` starts and stops them; importing this module starts nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from peewee import fn

from keys.db import db
from keys.models import KeyAudit
from keys.notices import Notices, Watcher, listening, notify

log = logging.getLogger("keys.changes")

CHANNEL = "api_key_changes"
POLL_SECONDS = 0.5  # SQLite: how often the newest audit id is read
RETRY_SECONDS = 1.0  # after a failed look-up


def notify_change(key: str) -> None:
    """Tell every process's ``KeyWatch`` that ``key`` changed (PostgreSQL; at the commit of the
    transaction this runs in). SQLite needs no message: the audit line is the signal."""
    notify(CHANNEL, key)


class KeyWatch(Watcher):
    """The background worker that forgets cached keys changed by any process: ``invalidate`` is
    ``KeyCache.invalidate`` (one key, or None for all). On PostgreSQL it is a subscriber of the
    process's ``notices``; on SQLite its own thread polls the audit list."""

    name = "key-watch"

    def __init__(self, invalidate: Callable[[str | None], None], notices: Notices) -> None:
        super().__init__()
        self.invalidate = invalidate
        notices.subscribe(CHANNEL, invalidate)

    def wanted(self) -> bool:
        return not listening()  # on PostgreSQL ``notices`` delivers the changes

    def _run(self) -> None:
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
