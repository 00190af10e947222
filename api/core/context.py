"""What a handler sees: the application context (collaborators) and the per-call ``Call``."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, Protocol

from api.config import Settings
from api.core.errors import ApiKeyMissing, ClientIpQuota, TokenMissing
from api.core.permissions import NO_LEVEL, level_rank
from api.core.registry import Registry
from keys.models import User
from keys.store import KeyCache, KeyRecord


@dataclass(frozen=True)
class Grant:
    """A valid token: whose it is and what it allows (spec §5.2)."""

    token_id: int
    user: User
    permissions: Mapping[str, str]

    def level(self, area: str) -> str:
        """The granted level for ``area`` (``none`` when not granted)."""
        return self.permissions.get(area, NO_LEVEL)


class GrantStore(Protocol):
    """Resolves an ``auth_token`` sent with a key into a Grant (the grant flow owns it)."""

    def resolve(self, token: str, key: KeyRecord, *, oauth_token: bool = False) -> Grant:
        """The grant, or raise TokenInvalid (107) / AccountClosed (108); ``oauth_token``: sent as
        the oauth_token of a verified OAuth signature (an OAuth access token needs it)."""
        ...


# What the context holds from the layers above core, as the callers use it: each a Protocol here,
# so core names no module above it (tests/core/test_layers.py); the real classes match them.


class UsageSink(Protocol):
    """Counts calls (api.runtime.usage.UsageRecorder: in memory, flushed in batches)."""

    def record(self, api_key: str, method: str, code: int, duration_ms: float,
               user_id: int = 0) -> None:
        """Count one call (``user_id``: the token's member, 0 without a token)."""
        ...


class AccessSink(Protocol):
    """One line per call (api.runtime.access_log.AccessLog)."""

    def write(self, client: str, key: str, method: str, fmt: str, code: int, ms: float) -> None:
        """Log one call."""
        ...


class FailureSink(Protocol):
    """The failed calls of known keys (api.runtime.request_log.RequestLog: in memory, flushed)."""

    def record(self, api_key: str, method: str, code: int, message: str, client_addr: str,
               fmt: str, signed: str = "", api_sig: str = "") -> None:
        """Keep one failed call."""
        ...


class NonceStore(Protocol):
    """Nonces already signed with (api.auth.nonces: the database, or Redis when configured)."""

    def first_use(self, scope: str, api_key: str, nonce: str, ttl: int) -> bool:
        """Record a nonce for ``ttl`` seconds; False when it was recorded before (a replay)."""
        ...


@dataclass(frozen=True, slots=True)
class OAuthRequest:
    """What an OAuth signature covers (RFC 5849 §3.4.1), kept apart by the transport for a request
    that carries OAuth parameters: the Authorization header, or ``oauth_*`` in the query or body."""

    http_method: str
    url: str  # scheme://host/path as the client called it, without the query
    authorization: str  # the Authorization header ("" without one)
    query: Mapping[str, str]
    body: Mapping[str, str]  # an urlencoded body's parameters, or a multipart body's text fields
    multipart: bool = False
    received_at: float | None = None  # when the request began to arrive (None: not known)


@dataclass(frozen=True, slots=True)
class OAuthCaller:
    """An OAuth-signed call's key (the consumer key) and, with a token, its grant."""

    key: KeyRecord
    grant: Grant | None


class OAuthVerifier(Protocol):
    """Verifies OAuth-signed API calls (api.auth.oauth.OAuthProvider, on oauthlib)."""

    def verify_call(self, signed: OAuthRequest, params: Mapping[str, str], *,
                    upload: bool = False) -> OAuthCaller:
        """The caller, or the ApiError the spec gives (101, 105, 107, 108, 130-135; 140 for
        unsigned multipart fields, allowed only when ``upload``, 146 for ``realm``)."""
        ...


class Quota(NamedTuple):
    """One rate-limit window as a call left it (api.runtime.ratelimit): the response's RateLimit
    headers (api/app.py) are written from these, and an ``exceeded`` one answers 112 or 113. (A
    tuple: every call makes four, and a frozen dataclass costs several times more to build.)"""

    name: str  # the policy's name in the headers, e.g. "key-3600s"
    limit: int  # calls the window allows
    window: int  # its length in seconds
    remaining: int  # calls left in it after this one
    reset_at: float  # UNIX time the window ends and its whole budget is back
    exceeded: bool = False  # this call was one too many
    policy: str = ""  # its item of RateLimit-Policy, '"key-3600s";q=5000;w=3600' ("": made then)


def exceeded(quotas: Sequence[Quota]) -> bool:
    """Whether a window among ``quotas`` refused the call (a loop: every API call asks)."""
    for quota in quotas:
        if quota.exceeded:
            return True
    return False


class RateLimits(Protocol):
    """Rate-limit budgets (api.runtime.ratelimit.RateLimiter: memory, or Redis when configured)."""

    def spend(self, quotas: list[Quota], scope: str, identity: str, *, policy: str = "") -> bool:
        """Spend one call of ``identity``'s budget in ``scope`` (``policy``: a key's own limit,
        else the scope's setting); the windows go to ``quotas``; True when one is exceeded."""
        ...


class MediaFiles(Protocol):
    """Stored media files by storage name (api.media.storage.Storage), as the media route and
    doc.delete use them."""

    def fetch(self, name: str) -> tuple[BinaryIO, int]:
        """A binary stream of the file and its length; FileNotFoundError when there is none."""
        ...

    def fetch_range(self, name: str, start: int | None, end: int | None) -> tuple[BinaryIO, int]:
        """A stream of just the bytes ``Range: bytes=<start>-<end>`` names, and the file's whole
        length (api.media.storage.byte_span, RangeNotSatisfiable)."""
        ...

    def size(self, name: str) -> int:
        """The file's length in bytes; FileNotFoundError when there is none."""
        ...

    def delete(self, name: str) -> None:
        """Remove the file; a missing file is not an error."""
        ...


class Ticket(Protocol):
    """An upload ticket row (api.models.docs.UploadTicket), as its label needs it."""

    @property
    def id(self) -> int:
        """The ticket's number."""
        ...

    @property
    def replace_doc_id(self) -> int | None:
        """The doc an upload.replace ticket replaces (None for upload.file)."""
        ...


class Uploads(Protocol):
    """The upload queue (api.media.worker.UploadQueue), as upload.file and upload.replace use it."""

    def enqueue(self, *, user: User, api_key: str, upload: UploadedFile, options: dict[str, Any],
                replace_doc: Any = None,  # a Doc row (api.models sits above core)
                admit: Callable[[], None] = ...) -> Ticket:
        """Queue the spooled file; the ticket is committed when this returns."""
        ...

    def wait(self, ticket_id: int, timeout: float, *, process: bool = True) -> None:
        """Finish the ticket now (unless not ``process``), or wait (bounded) for whoever
        claimed it."""
        ...

    def own_spool(self) -> Path:
        """This process's dir for request file parts (made again if missing)."""
        ...

    def decoding(self, timeout: float) -> AbstractContextManager[None]:
        """One of the process's decoding slots, shared by uploads and icons (DecodesBusy,
        api.media.worker, when none frees within ``timeout`` seconds)."""
        ...


class MetricsExport(Protocol):
    """The Prometheus metrics (api.runtime.metrics.Metrics), as /metrics serves them."""

    def exposition(self) -> tuple[bytes, str]:
        """The metrics in the text format, and its content type."""
        ...

    def authorized(self, authorization: str | None) -> bool:
        """Whether a request with this Authorization header may read them."""
        ...


class Worker(Protocol):
    """A background worker the server starts and stops (the flushers, the upload queue)."""

    def start(self) -> None:
        """Start its thread."""
        ...

    def stop(self) -> None:
        """Stop its thread and write what is left."""
        ...


@dataclass
class AppContext:
    """The collaborators one app instance holds; injected so tests swap clock and generators."""

    settings: Settings
    registry: Registry
    keys: KeyCache
    grants: GrantStore
    usage: UsageSink
    storage: MediaFiles  # media files (api.media.storage)
    uploads: Uploads  # the upload queue (api.media.worker)
    access_log: AccessSink | None = None  # None when switched off
    request_log: FailureSink | None = None  # failed calls per key (None: not kept)
    nonces: NonceStore | None = None  # used HMAC and OAuth nonces (None: not checked; tests)
    limits: RateLimits | None = None  # rate-limit budgets (None: no limits)
    oauth: OAuthVerifier | None = None  # OAuth-signed calls (None: not accepted)
    metrics: MetricsExport | None = None  # /metrics (None: API_METRICS off)
    clock: Callable[[], float] = time.time
    new_secret: Callable[[int], str] = secrets.token_hex
    background: list[Worker] = field(default_factory=list)  # started and stopped by the server


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart request, kept out of parameters and signatures."""

    filename: str
    content_type: str
    path: str  # a temporary file the transport owns until the call ends
    size: int


@dataclass(slots=True)
class Call:
    """One API call as a handler sees it: who calls, with what grant, from where."""

    ctx: AppContext
    method: str
    key: KeyRecord | None
    grant: Grant | None
    client_addr: str
    http_method: str
    params: Mapping[str, str]
    files: Mapping[str, UploadedFile]
    base_url: str
    quotas: list[Quota] = field(default_factory=list)  # rate-limit windows spent (the headers)

    @property
    def user(self) -> User | None:
        """The authenticated user, if a token was sent."""
        return self.grant.user if self.grant else None

    def require_grant(self) -> Grant:
        """The token's grant; a token method always has one (dispatch answers 106 without)."""
        if self.grant is None:
            raise TokenMissing()
        return self.grant

    def require_user(self) -> User:
        """The authenticated user, for token methods (106 without a token, as dispatch)."""
        return self.require_grant().user

    def require_key(self) -> KeyRecord:
        """The caller's key; only keyless methods lack one (dispatch answers 100 without)."""
        if self.key is None:
            raise ApiKeyMissing()
        return self.key

    def level(self, area: str) -> str:
        """The caller's level on ``area``: ``none`` without a token."""
        return self.grant.level(area) if self.grant else NO_LEVEL

    def allows(self, area: str, level: str) -> bool:
        """Whether the caller's grant reaches ``level`` on ``area``."""
        return level_rank(self.level(area)) >= level_rank(level)

    def now(self) -> int:
        """The injected clock, in whole UNIX seconds."""
        return int(self.ctx.clock())

    def limit_address(self, scope: str) -> None:
        """Spend one call of the caller address's budget for ``scope``, a method's own stricter
        policy (auth.getFrob: ``frob``); 113 when it is spent."""
        if self.ctx.limits is not None and self.ctx.limits.spend(self.quotas, scope,
                                                                 self.client_addr):
            raise ClientIpQuota()


