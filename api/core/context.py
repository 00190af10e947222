"""What a handler sees: the application context (collaborators) and the per-call ``Call``."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from api.config import Settings
from api.core.permissions import level_rank
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
        return self.permissions.get(area, "none")


class GrantStore(Protocol):
    """Resolves an ``auth_token`` sent with a key into a Grant (the grant flow owns it)."""

    def resolve(self, token: str, key: KeyRecord) -> Grant:
        """The grant, or raise TokenInvalid (107) / AccountClosed (108)."""
        ...


@dataclass
class AppContext:
    """The collaborators one app instance holds; injected so tests swap clock and generators."""

    settings: Settings
    registry: Registry
    keys: KeyCache
    grants: GrantStore
    usage: Any  # api.runtime.usage.UsageRecorder
    access_log: Any = None  # api.runtime.access_log.AccessLog, None when switched off
    clock: Callable[[], float] = time.time
    new_secret: Callable[[int], str] = secrets.token_hex
    services: dict[str, Any] = field(default_factory=dict)  # family-owned helpers (storage …)
    background: list[Any] = field(default_factory=list)  # workers with start()/stop(), run by serve


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

    @property
    def user(self) -> User | None:
        """The authenticated user, if a token was sent."""
        return self.grant.user if self.grant else None

    def level(self, area: str) -> str:
        """The caller's level on ``area``: ``none`` without a token."""
        return self.grant.level(area) if self.grant else "none"

    def allows(self, area: str, level: str) -> bool:
        """Whether the caller's grant reaches ``level`` on ``area``."""
        return level_rank(self.level(area)) >= level_rank(level)

    def now(self) -> int:
        """The injected clock, in whole UNIX seconds."""
        return int(self.ctx.clock())


