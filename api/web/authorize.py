"""The authorize page's logic (spec §4.2, §5.3, §5.4): check a link, then allow or deny it.

A link is accepted only when its key is enabled, its signature (no method name, over every query
parameter but ``api_sig``) is right, its levels are valid and, for desktop keys, its frob is this
key's, fresh and unused. A web key's frob is created only when the user allows; the browser is then
sent to the key's registered callback and nowhere else. Deny sends ``error=access_denied``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from api.auth import frobs
from api.auth.frobs import FlowError
from api.core.permissions import described
from api.models.grants import Frob
from api.signing import md5
from keys.models import User
from keys.store import KeyCache, KeyRecord

DENIED_ERROR = "access_denied"  # the ``error`` parameter a web callback gets on Deny


@dataclass(frozen=True)
class AuthorizeLink:
    """A checked authorization link: the app, who owns it, what it asks and its frob (desktop)."""

    key: KeyRecord
    owner: User
    permissions: dict[str, str]
    frob: Frob | None

    @property
    def is_web(self) -> bool:
        """Web keys get a redirect to their callback; desktop users go back to the app."""
        return self.key.auth_type == "web"

    def described(self) -> list[str]:
        """The requested permissions in plain words, one line per area asked for."""
        return described(self.permissions)


@dataclass(frozen=True)
class Outcome:
    """What the browser gets after a decision: a redirect (web keys) or a page message."""

    redirect: str | None
    title: str
    message: str


def check_link(params: Mapping[str, str], keys: KeyCache, *, now: int) -> AuthorizeLink:
    """The link's meaning, or FlowError with a message for the error page."""
    api_key = params.get("api_key", "").strip().lower()
    if not api_key:
        raise FlowError("The link has no api_key: the application built it wrongly.")
    key = keys.lookup(api_key)
    if key is None or not key.enabled:
        raise FlowError("The application's API key is unknown or disabled.")
    sent = params.get(md5.SIGNATURE_PARAM, "")
    if not sent:
        raise FlowError("The link is not signed (api_sig is missing).")
    if not any(md5.verify(params, None, secret.reveal(), sent) for secret in key.secrets_at(now)):
        raise FlowError("The link's signature is invalid: it was changed or signed wrongly.")
    permissions = frobs.requested_permissions(params)
    frob = None
    if key.auth_type != "web":
        if not params.get("frob"):
            raise FlowError("The link has no frob: the application must ask for one first.")
        frob = frobs.pending_frob(params["frob"], key.key, now=now)
    owner = User.get_or_none(User.id == key.owner_id)
    if owner is None:
        raise FlowError("The application's API key is unknown or disabled.")
    return AuthorizeLink(key=key, owner=owner, permissions=permissions, frob=frob)


def decide(link: AuthorizeLink, user: User, *, allow: bool, now: int, ttl: int,
           new_secret: Callable[[int], str]) -> Outcome:
    """Record the user's decision and say where the browser goes next."""
    name = link.key.name
    if link.is_web:
        if not allow:
            return Outcome(with_query(link.key.callback_url, error=DENIED_ERROR),
                           "Access refused", f"You refused access to {name}.")
        frob = frobs.new_frob(link.key.key, now=now, ttl=ttl, new_secret=new_secret,
                                  state="approved", user=user, permissions=link.permissions)
        return Outcome(with_query(link.key.callback_url, frob=frob),
                       "Access allowed", f"You allowed {name}.")
    if link.frob is None:  # check_link gives every desktop link its frob
        raise FlowError("The link has no frob: the application must ask for one first.")
    if not frobs.decide(link.frob, allow=allow, user=user, permissions=link.permissions):
        raise FlowError("This authorization link has already been used.")
    if allow:
        return Outcome(None, "Access allowed",
                       f"You allowed {name}. You can now return to the application to "
                       "complete the authorization.")
    return Outcome(None, "Access refused",
                   f"You refused access to {name}. The application cannot act on your behalf.")


def with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` added to its query (the registered callback's own query is kept)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))
