"""The demo account and key ``serve.py --demo`` creates once, so a newcomer can call at once."""

from __future__ import annotations

import secrets

from keys.db import db
from keys.models import ApiKey
from keys.store import add_user, create_key, find_user_by_username

DEMO_USER = "demo"
DEMO_KEY_NAME = "Demo key"


def ensure_demo() -> tuple[ApiKey, str | None]:
    """The demo key, created on first use; the password is returned only when just created."""
    with db.atomic():
        user = find_user_by_username(DEMO_USER)
        password = None
        if user is None:
            password = secrets.token_urlsafe(12)
            user = add_user(DEMO_USER, password, realname="Demo User")
        key = (ApiKey
               .select()
               .where(ApiKey.owner == user, ApiKey.name == DEMO_KEY_NAME)
               .first())
        if key is None:
            key = create_key(user, DEMO_KEY_NAME, description="Created by serve.py --demo")
    return key, password
