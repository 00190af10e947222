"""Used nonces (api/auth/nonces.py): once per key within the ttl, whichever process or thread
asks, in the database and in Redis (TEST_REDIS_URL); a Redis outage is a 503, never a pass."""

from __future__ import annotations

import os
import secrets
import threading

import pytest

from api.auth.nonces import DatabaseNonces, RedisNonces, redis_client
from api.core import errors
from api.models.grants import UsedNonce
from keys.db import db

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "")


@pytest.fixture
def stores(ctx, clock):
    """The database store on the test database, and Redis when the run has one."""
    found = [DatabaseNonces(clock)]
    if TEST_REDIS_URL:
        found.append(RedisNonces(redis_client(TEST_REDIS_URL)))
    return found


def test_a_nonce_is_accepted_once_per_key_and_scope(stores):
    for store in stores:
        nonce = secrets.token_hex(8)
        assert store.first_use("hmac", "k1", nonce, 600)
        assert not store.first_use("hmac", "k1", nonce, 600)
        assert store.first_use("hmac", "k2", nonce, 600)  # another key
        assert store.first_use("oauth", "k1", nonce, 600)  # another scheme


def test_an_expired_nonce_is_taken_over_once(ctx, clock):
    store = DatabaseNonces(clock)
    assert store.first_use("hmac", "k", "abcdefgh", 600)
    clock.advance(601)
    assert store.first_use("hmac", "k", "abcdefgh", 600)
    assert not store.first_use("hmac", "k", "abcdefgh", 600)


def test_expired_rows_are_swept(ctx, clock, monkeypatch):
    monkeypatch.setattr("api.auth.nonces.SWEEP_EVERY", 3)
    store = DatabaseNonces(clock)
    for n in range(3):
        store.first_use("hmac", "k", f"old-nonce-{n}", 10)
    clock.advance(11)
    for n in range(3):
        store.first_use("hmac", "k", f"new-nonce-{n}", 10)
    with db.connection_context():
        left = sorted(row.nonce for row in UsedNonce.select())
    assert left == ["new-nonce-0", "new-nonce-1", "new-nonce-2"]


def _race(store, nonce: str, threads: int = 8) -> list[bool]:
    """``threads`` threads offering one nonce at the same instant; each one's answer."""
    wins: list[bool] = []
    start = threading.Barrier(threads)

    def attempt() -> None:
        start.wait()
        try:
            wins.append(store.first_use("hmac", "race", nonce, 600))
        finally:
            db.close()

    running = [threading.Thread(target=attempt) for _ in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    return wins


def test_racing_threads_let_exactly_one_use_through(stores):
    for store in stores:
        assert sorted(_race(store, secrets.token_hex(8))) == [False] * 7 + [True]


def test_an_unreachable_redis_is_a_503_not_a_pass():
    store = RedisNonces(redis_client("redis://127.0.0.1:1/0"))
    with pytest.raises(errors.ServiceUnavailable):
        store.first_use("hmac", "k", "abcdefgh", 600)
