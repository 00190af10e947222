"""Token resolution (pipeline step 9): hash, look up, check key binding, revocation, account."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from api.core import errors
from api.core.context import Grant
from api.models.grants import Token, levels_of
from keys.models import User
from keys.store import KeyRecord


def token_hash(token: str) -> str:
    """What is stored for a token: its SHA-256 (≥128 random bits, so no salt is needed)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class DatabaseGrants:
    """GrantStore over the ``tokens`` table."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock

    def resolve(self, token: str, key: KeyRecord, *, oauth_token: bool = False) -> Grant:
        """The grant for ``token`` sent with ``key``; 107 if unknown, revoked or another key's.
        ``oauth_token``: it came as the oauth_token of a verified OAuth signature, which its
        secret signed. An OAuth access token (one with a secret) only so, another token never."""
        row = (Token
               .select(Token, User)
               .join(User)
               .where(Token.token_hash == token_hash(token))
               .first())
        if (row is None or row.revoked_at or row.api_key != key.key
                or bool(row.oauth_secret) != oauth_token):
            raise errors.TokenInvalid()
        if not row.user.is_open:
            raise errors.AccountClosed()
        return Grant(token_id=row.id, user=row.user, permissions=levels_of(row))


def issue_token(api_key: str, user: User, permissions: dict[str, str],
                new_secret: Callable[[int], str], *, now: int) -> str:
    """Store a new token for ``user`` on ``api_key`` and return it (the only time it is seen)."""
    token = f"{user.id}-{new_secret(16)}"
    Token.create(token_hash=token_hash(token), api_key=api_key, user=user, created_at=now,
                 **{"perm_" + area: level for area, level in permissions.items()})
    return token
