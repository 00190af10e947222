"""Rate limits (spec §3.1: 112 per key, 113 per client address) with the ``limits`` library, and
the response headers that show them (docs/protocol-choices.md, "Rate limits").

Scopes and their policies (settings, the library's notation, every window of a policy holds):
``key`` (API_RATELIMIT_PER_KEY, or the key's own ``rate_limit``), ``address`` (every API call,
API_RATELIMIT_PER_ADDRESS), and per address ``frob`` (auth.getFrob), ``signup`` and ``login``
(the form posts). An empty policy switches its scope off.

Fixed windows: a counter per window that starts at the window's first call and is whole again
when it ends. The headers are then exact, not estimates: ``r`` is what is left until ``t``, and
at ``t`` all of it comes back. A moving window would keep one entry per call (3,600 per address
for 3600/hour, in Redis too) and give back one call at a time, so its reset could only say when
the next single call frees up. The price, a burst of up to twice a window's budget across its
end, is why the defaults pair a short window with a long one.

Storage: this process's memory, or Redis when API_REDIS_URL is set, so every process spends one
budget. Redis unreachable: the call is counted in this process's memory for FALLBACK_SECONDS,
with a warning in the log, then Redis is tried again; limits keep holding per process rather
than refusing every call (a 503) or none.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache

from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage

from api.config import Settings
from api.core.context import Quota

log = logging.getLogger("api.ratelimit")

FALLBACK_SECONDS = 30.0  # after a Redis failure, how long this process counts by itself
REDIS_TIMEOUT = 1.0  # seconds; a stalled Redis must not hold request threads for long
# The scopes and the settings that hold their policies.
SCOPE_SETTINGS = {"key": "ratelimit_per_key", "address": "ratelimit_per_address",
                  "frob": "ratelimit_frobs", "signup": "ratelimit_signup",
                  "login": "ratelimit_login"}


@lru_cache(maxsize=4096)
def windows(policy: str) -> tuple[RateLimitItem, ...]:
    """A policy's windows, shortest first, one per length (the smallest amount: the other could
    never bind); () for an empty policy. ValueError when it does not parse."""
    if not policy.strip():
        return ()
    by_length: dict[int, RateLimitItem] = {}
    for item in parse_many(policy):
        length = item.get_expiry()
        if length not in by_length or item.amount < by_length[length].amount:
            by_length[length] = item
    return tuple(by_length[length] for length in sorted(by_length))


def within(policy: str, ceiling: str) -> bool:
    """Whether ``policy`` never allows more than ``ceiling``: each window of the ceiling is
    matched by one of the policy that, repeated over the ceiling's length, fits in its amount
    (the key console lets an owner lower the default, never raise it)."""
    mine = windows(policy)
    return all(any(item.amount * math.ceil(limit.get_expiry() / item.get_expiry())
                   <= limit.amount for item in mine)
               for limit in windows(ceiling))


class RateLimiter:
    """Spends budgets in ``storage``; ``fallback`` (memory) takes over while Redis fails."""

    def __init__(self, policies: Mapping[str, str], storage: Storage, *,
                 fallback: Storage | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        for scope, policy in policies.items():
            try:
                windows(policy)
            except ValueError:
                setting = "API_" + SCOPE_SETTINGS.get(scope, scope).upper()
                raise ValueError(f"{setting}: not a rate limit: {policy!r} (write e.g. "
                                 "10/second;3600/hour)") from None
        self.policies = dict(policies)
        self.storage = storage
        self.fallback = fallback
        self.clock = clock
        self._failed_until = 0.0
        self._lock = threading.Lock()  # guards only _failed_until

    def spend(self, quotas: list[Quota], scope: str, identity: str, *, policy: str = "") -> bool:
        """Spend one call of ``identity``'s budget in ``scope``, window by window from the
        shortest; past an exceeded window the longer ones are only read (a call refused for a
        burst does not eat the hour). Appends the windows to ``quotas``; True when refused."""
        try:
            items = windows(policy or self.policies.get(scope, ""))
        except ValueError:  # a key's limit written by hand that does not parse: the default
            items = windows(self.policies.get(scope, ""))
        if not items:
            return False
        storage = self.storage
        if self.fallback is not None and self.clock() < self._failed_until:
            storage = self.fallback
        try:
            spent = _spend(storage, items, scope, identity)
        except StorageError as error:
            if self.fallback is None or storage is self.fallback:
                raise
            with self._lock:
                self._failed_until = self.clock() + FALLBACK_SECONDS
            # The error's type only: its text may hold the Redis URL and its password.
            log.warning("rate limits: redis unavailable (%s); counting in this process's memory "
                        "for %d s", type(error.storage_error).__name__, FALLBACK_SECONDS)
            spent = _spend(self.fallback, items, scope, identity)
        quotas.extend(spent)
        return any(quota.exceeded for quota in spent)


def _spend(storage: Storage, items: Sequence[RateLimitItem], scope: str,
           identity: str) -> list[Quota]:
    """The fixed-window strategy's own storage calls (limits.FixedWindowRateLimiter.hit), keeping
    the count ``incr`` returns: each call's ``remaining`` is its own, exact across processes."""
    spent: list[Quota] = []
    refused = False
    for item in items:
        key = item.key_for(scope, identity)
        used = storage.get(key) if refused else storage.incr(key, item.get_expiry())
        exceeded = not refused and used > item.amount
        refused = refused or exceeded
        spent.append(Quota(name=f"{scope}-{item.get_expiry()}s", limit=item.amount,
                           window=item.get_expiry(), remaining=max(0, item.amount - used),
                           reset_at=storage.get_expiry(key), exceeded=exceeded))
    return spent


def build_limiter(settings: Settings) -> RateLimiter:
    """The limiter the settings ask for: Redis (API_REDIS_URL, keys under API_RATELIMIT_PREFIX)
    with this process's memory as its fallback, or memory alone."""
    policies = {scope: getattr(settings, name) for scope, name in SCOPE_SETTINGS.items()}
    if not settings.redis_url:
        return RateLimiter(policies, MemoryStorage())
    redis = RedisStorage(settings.redis_url, key_prefix=settings.ratelimit_prefix,
                         wrap_exceptions=True, socket_timeout=REDIS_TIMEOUT,
                         socket_connect_timeout=REDIS_TIMEOUT)
    return RateLimiter(policies, redis, fallback=MemoryStorage())


def headers(quotas: Sequence[Quota], *, now: float | None = None) -> dict[str, str]:
    """The response headers for the windows a call spent: ``RateLimit-Policy`` and ``RateLimit``
    (draft-ietf-httpapi-ratelimit-headers-10: one item per window, ``q``/``w`` and ``r``/``t``)
    and ``X-RateLimit-Limit/Remaining/Reset`` of the window that binds (the exceeded one, else
    the one with the fewest calls left), its reset in UNIX seconds as GitHub's API gives it."""
    if not quotas:
        return {}
    now = time.time() if now is None else now
    binding = min(quotas, key=lambda quota: (not quota.exceeded, quota.remaining,
                                             -quota.reset_at))
    return {
        "RateLimit-Policy": ", ".join(f'"{quota.name}";q={quota.limit};w={quota.window}'
                                      for quota in quotas),
        "RateLimit": ", ".join(f'"{quota.name}";r={quota.remaining};t={_seconds(quota, now)}'
                               for quota in quotas),
        "X-RateLimit-Limit": str(binding.limit),
        "X-RateLimit-Remaining": str(binding.remaining),
        "X-RateLimit-Reset": str(math.ceil(binding.reset_at)),
    }


def retry_after(quotas: Sequence[Quota], *, now: float | None = None) -> int:
    """Seconds until every exceeded window is whole again (at least 1): a 429's Retry-After."""
    now = time.time() if now is None else now
    return max([1, *(_seconds(quota, now) for quota in quotas if quota.exceeded)])


def _seconds(quota: Quota, now: float) -> int:
    return max(0, math.ceil(quota.reset_at - now))
