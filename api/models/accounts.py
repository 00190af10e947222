"""The web pages' tables: login sessions (stored only as hashes) and recent failed logins."""

from __future__ import annotations

from peewee import CharField, ForeignKeyField, IntegerField

from keys.db import BaseModel, IdField
from keys.models import User

# Beside each foreign key ``x`` peewee adds ``x_id``, the raw column value; the bare annotations
# (``owner_id: int``) only declare its type for the checker and create nothing.


class Session(BaseModel):
    """A logged-in browser; the cookie holds the id, the table only its SHA-256."""

    id = IdField()
    id_hash = CharField(max_length=64, unique=True)
    user = ForeignKeyField(User, backref="+", on_delete="CASCADE")
    user_id: int
    created_at = IntegerField()
    expires_at = IntegerField()

    class Meta:
        table_name = "web_sessions"


class LoginFailure(BaseModel):
    """One failed login, counted per account and per address for throttling."""

    id = IdField()
    scope = CharField(max_length=200)  # "user:<name>" or "addr:<ip>"
    at = IntegerField()

    class Meta:
        table_name = "login_failures"
        indexes = ((("scope", "at"), False),)


MODELS = (Session, LoginFailure)
