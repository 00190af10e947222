"""The ``auth.*`` family (spec §5.3, §5.4): frobs for desktop apps, frob → token, token check."""

from __future__ import annotations

from typing import Annotated

from api.auth import frobs
from api.core.context import Call
from api.core.errors import TokenMissing, method_error
from api.core.registry import MethodGroup
from api.formats.tree import Text
from api.models.docs import Doc, share_level
from keys.models import User

group = MethodGroup()

FrobMissing = method_error(1, "The frob is missing", "The frob is missing")
FrobInvalid = method_error(2, "The passed frob is either invalid or already used",
                           "The passed frob is either invalid or already used")

Extra = Annotated[str, "Comma-separated extras; pref adds the user's preferences."]
_AUTH_RESPONSE = ('<auth><token>12345-a0b1c2d3e4f5</token><permissions doc="write" blog="none" '
                  'post="none" network="read" profile="read"/><user user_id="1234" '
                  'username="Superman" realname="Kal-El" lg="en" is_pro="0"/></auth>')


def user_summary(user: User) -> dict:
    """The ``user`` element of an ``auth`` answer (spec §5.4 fields)."""
    return {"user_id": user.id, "username": user.username, "realname": user.realname,
            "lg": user.lg, "is_pro": user.is_pro}


def preferences(user: User) -> dict:
    """``extra=pref``: the user's language and the settings a new upload gets by default."""
    share = share_level(Doc.is_public.default, Doc.is_family.default, Doc.is_friend.default)
    return {"lg": user.lg, "share": share, "safety": Doc.safety.default,
            "license": Doc.license.default, "perm_comment": Doc.perm_comment.default,
            "perm_tag": Doc.perm_tag.default, "perm_tagme": Doc.perm_tagme.default}


def auth_answer(token: str, permissions: dict[str, str], user: User, extra: str) -> dict:
    """The ``auth`` element shared by getToken and checkToken."""
    auth = {"token": Text(token), "permissions": dict(permissions), "user": user_summary(user)}
    if "pref" in {part.strip() for part in extra.split(",")}:
        auth["pref"] = preferences(user)
    return {"auth": auth}


@group.method("auth.getFrob", title="Ask for a Frob.", sign=True,
              response="<auth><frob>12345-a0b1c2d3e4f5</frob></auth>")
def get_frob(call: Call) -> dict:
    """Returns a single-use frob for the authorization link; it expires after a few minutes.

    Each caller address may create only so many (API_RATELIMIT_FROBS; 113 beyond that)."""
    call.limit_address("frob")  # every frob is a row: a loop must not fill the table
    frob = frobs.new_frob(call.require_key().key, now=call.now(), ttl=call.ctx.settings.frob_ttl,
                              new_secret=call.ctx.new_secret)
    return {"auth": {"frob": Text(frob)}}


@group.method("auth.getToken", title="Returns the auth token for the given frob", sign=True,
              missing=FrobMissing, errors=(FrobInvalid,), response=_AUTH_RESPONSE)
def get_token(call: Call, frob: Annotated[str, "The frob the user approved."],
              extra: Extra = "") -> dict:
    """Exchanges an approved frob (once) for a token that lasts until the user revokes it."""
    try:
        done = frobs.exchange(frob, call.require_key().key, now=call.now(),
                                  new_secret=call.ctx.new_secret)
    except frobs.FlowError:
        raise FrobInvalid() from None
    return auth_answer(done.token, done.permissions, done.user, extra)


@group.method("auth.checkToken", title="Check a token validity.", token=True, sign=True,
              missing=TokenMissing, response=_AUTH_RESPONSE)
def check_token(call: Call, auth_token: Annotated[str, "The token to check."],
                extra: Extra = "") -> dict:
    """Returns the permissions and the user of the token sent."""
    grant = call.require_grant()
    return auth_answer(auth_token, dict(grant.permissions), grant.user, extra)
