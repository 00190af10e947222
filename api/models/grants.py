"""The grant flow's tables: frobs (pending authorizations) and tokens (stored only as hashes)."""

from __future__ import annotations

from peewee import CharField, ForeignKeyField, IntegerField

from api.core.permissions import PERMISSION_AREAS
from keys.db import BaseModel, IdField
from keys.models import User, now


class Frob(BaseModel):
    """A frob: created for a key, approved (or denied) by a user, exchanged once for a token."""

    id = IdField()
    frob = CharField(max_length=64, unique=True)
    api_key = CharField(max_length=32, index=True)
    created_at = IntegerField(default=now)
    expires_at = IntegerField()
    state = CharField(max_length=10, default="new")  # new | approved | denied | used
    user = ForeignKeyField(User, null=True, on_delete="CASCADE")
    perm_doc = CharField(max_length=8, default="none")
    perm_blog = CharField(max_length=8, default="none")
    perm_post = CharField(max_length=8, default="none")
    perm_network = CharField(max_length=8, default="none")
    perm_profile = CharField(max_length=8, default="none")

    class Meta:
        table_name = "frobs"


class Token(BaseModel):
    """An access token bound to one key and one user; only its SHA-256 is stored."""

    id = IdField()
    token_hash = CharField(max_length=64, unique=True)
    api_key = CharField(max_length=32)
    user = ForeignKeyField(User, backref="tokens", on_delete="CASCADE")
    perm_doc = CharField(max_length=8, default="none")
    perm_blog = CharField(max_length=8, default="none")
    perm_post = CharField(max_length=8, default="none")
    perm_network = CharField(max_length=8, default="none")
    perm_profile = CharField(max_length=8, default="none")
    created_at = IntegerField(default=now)
    revoked_at = IntegerField(default=0)

    class Meta:
        table_name = "tokens"
        indexes = ((("user", "api_key"), False),)


def levels_of(row: Frob | Token) -> dict[str, str]:
    """The level per area stored on a frob or token row."""
    return {area: getattr(row, "perm_" + area) for area in PERMISSION_AREAS}


MODELS = (Frob, Token)
