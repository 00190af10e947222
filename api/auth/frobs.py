"""The grant flow's state machine (spec §5.3, §5.4): frob created → approved or denied → used.

Frobs and tokens are stored only as SHA-256 hashes. The clock and the secret generator are passed
in, so expiry is tested without sleeping. A second approval of the same app by the same user issues
a new token and leaves earlier ones working until the user revokes the app (docs/grant-flow.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from peewee import JOIN

from api.auth.tokens import issue_token, token_hash
from api.core.permissions import NO_LEVEL, PERMISSION_AREAS, levels_for
from api.models.grants import Frob, Token, levels_of
from keys.db import db
from keys.models import ApiKey, User

PERM_PREFIX = "perm_"


class FlowError(Exception):
    """A link or frob that cannot be used; the message is safe to show to the user."""


@dataclass(frozen=True)
class Exchange:
    """What ``auth.getToken`` hands back: the new token, its levels and its user."""

    token: str
    permissions: dict[str, str]
    user: User


@dataclass(frozen=True)
class AuthorizedApp:
    """One application a user authorized, as the authorized-applications page lists it."""

    api_key: str
    name: str
    owner: str
    permissions: dict[str, str]
    authorized_at: int
    tokens: int



def requested_permissions(params: Mapping[str, str]) -> dict[str, str]:
    """The levels asked for by ``perm_*`` link parameters; areas left out are ``none``."""
    levels = dict.fromkeys(PERMISSION_AREAS, NO_LEVEL)
    for name, value in params.items():
        if not name.startswith(PERM_PREFIX):
            continue
        area = name[len(PERM_PREFIX):]
        if area not in levels:
            raise FlowError(f"The link asks for an unknown permission area ({area[:20]!r}).")
        allowed = levels_for(area)
        if value not in allowed:
            raise FlowError(f"The link asks for an invalid level on {area}: "
                            f"use one of {', '.join(allowed)}.")
        levels[area] = value
    return levels


def new_frob(api_key: str, *, now: int, ttl: int, new_secret: Callable[[int], str],
             state: str = "new", user: User | None = None,
             permissions: Mapping[str, str] | None = None) -> str:
    """Create a frob ``<digits>-<hex>`` for ``api_key`` valid ``ttl`` seconds; return it."""
    frob = f"{now}-{new_secret(16)}"
    perms = {PERM_PREFIX + area: level for area, level in (permissions or {}).items()}
    with db.atomic():
        Frob.delete().where(Frob.expires_at < now - ttl).execute()  # keep the table small
        Frob.create(frob=token_hash(frob), api_key=api_key, created_at=now,
                    expires_at=now + ttl, state=state, user=user, **perms)
    return frob


def pending_frob(frob: str, api_key: str, *, now: int) -> Frob:
    """The fresh, unused frob a desktop link names; FlowError otherwise."""
    row = Frob.get_or_none(Frob.frob == token_hash(frob))
    if row is None or row.api_key != api_key:
        raise FlowError("The frob in this link is unknown or belongs to another application.")
    if row.expires_at <= now:
        raise FlowError("This authorization link has expired. Start again from the application.")
    if row.state != "new":
        raise FlowError("This authorization link has already been used.")
    return row


def decide(row: Frob, *, allow: bool, user: User, permissions: Mapping[str, str]) -> bool:
    """Approve or deny a pending frob; False if it was decided meanwhile (single use)."""
    changes = {"state": "approved" if allow else "denied", "user": user}
    if allow:
        changes.update({PERM_PREFIX + area: level for area, level in permissions.items()})
    updated = (Frob
               .update(changes)
               .where(Frob.id == row.id, Frob.state == "new")
               .execute())
    return updated == 1


def exchange(frob: str, api_key: str, *, now: int, new_secret: Callable[[int], str]) -> Exchange:
    """Turn an approved frob into a token, once; FlowError if unknown, unapproved, expired, used."""
    with db.atomic():
        row = (Frob
               .select(Frob, User)
               .join(User, JOIN.LEFT_OUTER)
               .where(Frob.frob == token_hash(frob))
               .first())
        if (row is None or row.api_key != api_key or row.state != "approved"
                or row.expires_at <= now):
            raise FlowError("frob invalid")
        used = (Frob
                .update(state="used")
                .where(Frob.id == row.id, Frob.state == "approved")
                .execute())
        if used != 1:
            raise FlowError("frob already used")
        permissions = levels_of(row)
        token = issue_token(api_key, row.user, permissions, new_secret, now=now)
    return Exchange(token=token, permissions=permissions, user=row.user)


def authorized_apps(user: User) -> list[AuthorizedApp]:
    """The applications holding live tokens of ``user``, latest grant first (one query)."""
    rows = (Token
            .select(Token, ApiKey, User)
            .join(ApiKey, on=(Token.api_key == ApiKey.key), attr="app")
            .join_from(ApiKey, User)
            .where(Token.user == user, Token.revoked_at == 0)
            .order_by(Token.created_at.desc(), Token.id.desc()))
    apps: dict[str, AuthorizedApp] = {}
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.api_key] = counts.get(row.api_key, 0) + 1
        if row.api_key not in apps:
            key = row.app  # type: ignore[attr-defined]  # the joined ApiKey (attr="app")
            apps[row.api_key] = AuthorizedApp(
                api_key=row.api_key, name=key.name, owner=key.owner.username,
                permissions=levels_of(row), authorized_at=row.created_at, tokens=0)
    return [replace(app, tokens=counts[app.api_key]) for app in apps.values()]


def revoke(user: User, api_key: str, *, now: int) -> int:
    """Revoke every live token ``user`` gave ``api_key``; the number revoked."""
    return (Token
            .update(revoked_at=now)
            .where(Token.user == user, Token.api_key == api_key, Token.revoked_at == 0)
            .execute())
