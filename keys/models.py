"""Tables owned by this package: users (key owners and members), API keys, the keys' audit list,
usage counters."""

from __future__ import annotations

import time

from peewee import (
    SQL,
    BooleanField,
    CharField,
    FloatField,
    ForeignKeyField,
    IntegerField,
    TextField,
)

from keys.db import BaseModel, IdField


def now() -> int:
    """UNIX seconds, the unit of every stored timestamp."""
    return int(time.time())


# Beside each foreign key ``x`` peewee adds ``x_id``, the raw column value; the bare annotations
# (``owner_id: int``) only declare its type for the checker and create nothing.


class User(BaseModel):
    """A member: owns keys, documents and grants (spec §5.4 user fields)."""

    id = IdField()
    username = CharField(max_length=64, unique=True)
    realname = CharField(max_length=128, default="")
    email = CharField(max_length=254, default="")
    password_hash = CharField(max_length=255, default="")
    lg = CharField(max_length=8, default="en")
    is_pro = BooleanField(default=False)
    status = CharField(max_length=8, default="open")  # open | closed (code 108)
    created_at = IntegerField(default=now)
    # A site administrator sees every key at /admin/keys (migration 3).
    is_admin = BooleanField(default=False, constraints=[SQL("DEFAULT FALSE")])
    # The member's own buddy icon (migration 8): empty secret means the default icon; the secret
    # changes with every new icon, so its URL can be cached for a year.
    icon_secret = CharField(max_length=16, default="", constraints=[SQL("DEFAULT ''")])
    icon_at = IntegerField(default=0, constraints=[SQL("DEFAULT 0")])  # when it was uploaded
    # where the member lives (user.get location), set on the profile settings page
    town = CharField(max_length=64, default="", constraints=[SQL("DEFAULT ''")])
    country = CharField(max_length=64, default="", constraints=[SQL("DEFAULT ''")])

    class Meta:
        table_name = "users"

    @property
    def is_open(self) -> bool:
        """Whether the account may act (closed accounts get 108 on token calls)."""
        return self.status == "open"


class ApiKey(BaseModel):
    """An application's key and secret, with its settings (spec §8)."""

    id = IdField()
    key = CharField(max_length=32, unique=True)
    secret = CharField(max_length=64)
    owner = ForeignKeyField(User, backref="api_keys", on_delete="CASCADE", index=True)
    owner_id: int
    name = CharField(max_length=128)
    description = TextField(default="")
    auth_type = CharField(max_length=8, default="desktop")  # desktop | web
    callback_url = CharField(max_length=2048, default="")
    enabled = BooleanField(default=True)
    always_signed = BooleanField(default=False)
    allowed_ips = TextField(default="")  # comma-separated addresses/CIDRs; empty: all (111)
    created_at = IntegerField(default=now)
    last_used_at = IntegerField(default=0)
    # After a rotation the old secret still signs until previous_expires_at (UNIX seconds);
    # "" and 0 when there is none (migration 3).
    previous_secret = CharField(max_length=64, default="", constraints=[SQL("DEFAULT ''")])
    previous_expires_at = IntegerField(default=0, constraints=[SQL("DEFAULT 0")])
    # Migration 6 (issue 10): refuse MD5 signatures (HMAC-SHA256 or OAuth only); let OAuth 1.0
    # clients exchange a request token without a verifier; this key's own rate limit in the
    # ``limits`` notation ("" means the server's API_RATELIMIT_PER_KEY).
    require_hmac = BooleanField(default=False, constraints=[SQL("DEFAULT FALSE")])
    legacy_oauth = BooleanField(default=False, constraints=[SQL("DEFAULT FALSE")])
    rate_limit = CharField(max_length=64, default="", constraints=[SQL("DEFAULT ''")])

    class Meta:
        table_name = "api_keys"


class KeyAudit(BaseModel):
    """One change to a key: who (a username, or ``cli``), what (never a secret), when."""

    id = IdField()
    api_key = ForeignKeyField(ApiKey, backref="audit", on_delete="CASCADE", index=True)
    api_key_id: int
    actor = CharField(max_length=64)
    action = TextField()
    at = IntegerField(default=now)

    class Meta:
        table_name = "key_audit"


class UsageCounter(BaseModel):
    """Calls per key, method, hour and result code, with summed duration (flushed in batches)."""

    id = IdField()
    api_key = CharField(max_length=32)
    method = CharField(max_length=64)
    hour = IntegerField()  # UNIX seconds // 3600
    code = IntegerField()  # 0 for success
    calls = IntegerField(default=0)
    total_ms = FloatField(default=0.0)

    class Meta:
        table_name = "usage_counters"
        indexes = ((("api_key", "method", "hour", "code"), True), (("api_key", "hour"), False))


MODELS = (User, ApiKey, KeyAudit, UsageCounter)
