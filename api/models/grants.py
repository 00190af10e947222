"""The grant flow's tables: frobs (pending authorizations) and tokens (stored only as hashes)."""

from __future__ import annotations

from peewee import SQL, CharField, ForeignKeyField, IntegerField

from api.core.permissions import NO_LEVEL, PERMISSION_AREAS
from keys.db import BaseModel, IdField
from keys.models import User, now

# Beside each foreign key ``x`` peewee adds ``x_id``, the raw column value; the bare annotations
# (``owner_id: int``) only declare its type for the checker and create nothing.


class Frob(BaseModel):
    """A frob: created for a key, approved (or denied) by a user, exchanged once for a token."""

    id = IdField()
    frob = CharField(max_length=64, unique=True)
    api_key = CharField(max_length=32, index=True)
    created_at = IntegerField(default=now)
    expires_at = IntegerField()
    state = CharField(max_length=10, default="new")  # new | approved | denied | used
    user = ForeignKeyField(User, null=True, on_delete="CASCADE")
    user_id: int | None
    perm_doc = CharField(max_length=8, default=NO_LEVEL)
    perm_blog = CharField(max_length=8, default=NO_LEVEL)
    perm_post = CharField(max_length=8, default=NO_LEVEL)
    perm_network = CharField(max_length=8, default=NO_LEVEL)
    perm_profile = CharField(max_length=8, default=NO_LEVEL)

    class Meta:
        table_name = "frobs"


class Token(BaseModel):
    """An access token bound to one key and one user; only its SHA-256 is stored."""

    id = IdField()
    token_hash = CharField(max_length=64, unique=True)
    api_key = CharField(max_length=32)
    user = ForeignKeyField(User, backref="tokens", on_delete="CASCADE")
    user_id: int
    perm_doc = CharField(max_length=8, default=NO_LEVEL)
    perm_blog = CharField(max_length=8, default=NO_LEVEL)
    perm_post = CharField(max_length=8, default=NO_LEVEL)
    perm_network = CharField(max_length=8, default=NO_LEVEL)
    perm_profile = CharField(max_length=8, default=NO_LEVEL)
    created_at = IntegerField(default=now)
    revoked_at = IntegerField(default=0)
    # An OAuth access token is a token like any other (auth.checkToken takes it) with the secret
    # its client signs with; "" for tokens issued by the frob flow (migration 6).
    oauth_secret = CharField(max_length=64, default="", constraints=[SQL("DEFAULT ''")])

    class Meta:
        table_name = "tokens"
        indexes = ((("user", "api_key"), False),)


class OAuthRequestToken(BaseModel):
    """An OAuth request token (spec §5.5): issued to a consumer key, authorized (or denied) by a
    member on the consent page with the levels asked as ``perm_*``, exchanged once for an access
    token (a ``Token`` row). Only the token's SHA-256 is stored; its secret signs the exchange."""

    id = IdField()
    token_hash = CharField(max_length=64, unique=True)
    secret = CharField(max_length=64)
    api_key = CharField(max_length=32, index=True)
    callback = CharField(max_length=2048, default="")  # "oob" or a URL
    verifier = CharField(max_length=64, default="")
    state = CharField(max_length=10, default="new")  # new | approved | denied | used
    user = ForeignKeyField(User, null=True, on_delete="CASCADE")
    user_id: int | None
    perm_doc = CharField(max_length=8, default=NO_LEVEL)
    perm_blog = CharField(max_length=8, default=NO_LEVEL)
    perm_post = CharField(max_length=8, default=NO_LEVEL)
    perm_network = CharField(max_length=8, default=NO_LEVEL)
    perm_profile = CharField(max_length=8, default=NO_LEVEL)
    created_at = IntegerField(default=now)
    expires_at = IntegerField()

    class Meta:
        table_name = "oauth_request_tokens"


class UsedNonce(BaseModel):
    """A nonce a key (or OAuth consumer) already signed with, refused again until it expires:
    HMAC-SHA256 ``api_nonce`` and OAuth ``oauth_nonce`` (``scope`` tells them apart). The store
    when no Redis is configured; expired rows are swept."""

    id = IdField()
    scope = CharField(max_length=8)  # "hmac" | "oauth"
    api_key = CharField(max_length=32)
    nonce = CharField(max_length=64)
    expires_at = IntegerField(index=True)

    class Meta:
        table_name = "used_nonces"
        indexes = ((("scope", "api_key", "nonce"), True),)


def levels_of(row: Frob | Token | OAuthRequestToken) -> dict[str, str]:
    """The level per area stored on a frob or token row."""
    return {area: getattr(row, "perm_" + area) for area in PERMISSION_AREAS}


MODELS = (Frob, Token, OAuthRequestToken, UsedNonce)
