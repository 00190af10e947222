"""Used nonces, shared by every process on one database or one Redis: a signed call's nonce is
accepted once per key within its timestamp window (HMAC-SHA256 ``api_nonce``, OAuth
``oauth_nonce``), so a captured request cannot be replayed, whichever process receives it.

Redis when ``API_REDIS_URL`` is set (``SET NX EX``: one round trip, expiry by Redis); otherwise
the ``used_nonces`` table, whose unique index decides which of two racing calls wins; expired
rows are swept every few hundred calls.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from peewee import IntegrityError

from api.core import errors
from api.models.grants import UsedNonce
from keys.db import db

log = logging.getLogger("api.nonces")

SWEEP_EVERY = 500  # calls between two deletions of expired rows (one indexed DELETE)
MAX_NONCE_CHARS = 64  # the column's width; longer nonces are refused by the callers first


class DatabaseNonces:
    """Nonces in the ``used_nonces`` table (the default, SQLite or PostgreSQL)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._calls = 0
        self._lock = threading.Lock()  # guards only the sweep counter, not the rule

    def first_use(self, scope: str, api_key: str, nonce: str, ttl: int) -> bool:
        """Record ``nonce`` for ``(scope, api_key)`` for ``ttl`` seconds; False when it is
        already recorded and not expired (a replay)."""
        now = int(self.clock())
        self._maybe_sweep(now)
        try:
            with db.atomic():
                UsedNonce.insert(scope=scope, api_key=api_key, nonce=nonce,
                                 expires_at=now + ttl).execute()
            return True
        except IntegrityError:
            # Seen before; usable again only if that use expired (then it is taken over once).
            with db.atomic():
                taken = (UsedNonce.update(expires_at=now + ttl)
                         .where(UsedNonce.scope == scope, UsedNonce.api_key == api_key,
                                UsedNonce.nonce == nonce, UsedNonce.expires_at <= now)
                         .execute())
            return taken == 1

    def _maybe_sweep(self, now: int) -> None:
        with self._lock:
            self._calls += 1
            due = self._calls % SWEEP_EVERY == 1
        if due:
            with db.atomic():
                UsedNonce.delete().where(UsedNonce.expires_at <= now).execute()


class RedisNonces:
    """Nonces in Redis (``API_REDIS_URL``): every process and host sees every nonce at once,
    under ``<prefix>:nonce:`` (API_REDIS_PREFIX)."""

    def __init__(self, client: Any, prefix: str = "ipernity") -> None:
        self.client = client
        self.prefix = f"{prefix}:nonce:"

    def first_use(self, scope: str, api_key: str, nonce: str, ttl: int) -> bool:
        """Like DatabaseNonces.first_use; Redis unreachable answers 503 (retry), never a pass."""
        import redis

        try:
            return bool(self.client.set(f"{self.prefix}{scope}:{api_key}:{nonce}", b"1",
                                        nx=True, ex=max(1, ttl)))
        except redis.RedisError as error:
            log.warning("redis unavailable for nonces: %s", type(error).__name__)
            raise errors.ServiceUnavailable("nonce store unavailable") from None


def redis_client(url: str) -> Any:
    """A Redis client for ``url`` with short timeouts: a stalled Redis must not hold request
    threads (the caller answers 503 instead)."""
    import redis

    return redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)


def build_nonces(redis_url: str, clock: Callable[[], float] = time.time, *,
                 redis_prefix: str = "ipernity") -> Any:
    """The nonce store the settings ask for."""
    if redis_url:
        return RedisNonces(redis_client(redis_url), redis_prefix)
    return DatabaseNonces(clock)


__all__ = ["DatabaseNonces", "RedisNonces", "build_nonces", "redis_client"]
