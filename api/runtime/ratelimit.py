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
from typing import Any

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
        self._lock = threading.Lock()  # guards only _failed_until and _reported
        # limits' MemoryStorage is not thread-safe (5.8: concurrent incr calls race to restart
        # its expiry timer, "threads can only be started once"): one call at a time into it.
        # It is this process's own object, so a process-local lock is all it needs.
        self._memory_lock = threading.Lock()
        self._reported: set[str] = set()  # unexpected error types already logged

    def spend(self, quotas: list[Quota], scope: str, identity: str, *, policy: str = "") -> bool:
        """Spend one call of ``identity``'s budget in ``scope``, window by window from the
        shortest; past an exceeded window the longer ones are only read (a call refused for a
        burst does not eat the hour). Appends the windows to ``quotas``; True when refused.
        A limiter that fails unexpectedly lets the call through (logged once per error type):
        a broken counter must not turn every call into a 500."""
        try:
            items = windows(policy or self.policies.get(scope, ""))
        except ValueError:  # a key's limit written by hand that does not parse: the default
            items = windows(self.policies.get(scope, ""))
        if not items:
            return False
        try:
            spent = self._counted(items, scope, identity)
        except Exception as error:  # anything: the call goes on uncounted
            with self._lock:
                first = type(error).__name__ not in self._reported
                self._reported.add(type(error).__name__)
            if first:  # the type only: a message may hold a URL and its password
                log.error("rate limits: counting failed (%s); calls pass uncounted while it "
                          "lasts", type(error).__name__)
            return False
        quotas.extend(spent)
        return any(quota.exceeded for quota in spent)

    def _counted(self, items: Sequence[RateLimitItem], scope: str,
                 identity: str) -> list[Quota]:
        """The windows spent in the storage, or in the fallback while Redis fails."""
        fallback = self.fallback
        if fallback is None or self.clock() >= self._failed_until:
            try:
                return self._spend_in(self.storage, items, scope, identity)
            except StorageError as error:
                if fallback is None:
                    raise
                with self._lock:
                    self._failed_until = self.clock() + FALLBACK_SECONDS
                # The error's type only: its text may hold the Redis URL and its password.
                log.warning("rate limits: redis unavailable (%s); counting in this process's "
                            "memory for %d s", type(error.storage_error).__name__,
                            FALLBACK_SECONDS)
        return self._spend_in(fallback, items, scope, identity)

    def _spend_in(self, storage: Storage, items: Sequence[RateLimitItem], scope: str,
                  identity: str) -> list[Quota]:
        if isinstance(storage, MemoryStorage):
            with self._memory_lock:
                return _spend(storage, items, scope, identity)
        return _spend(storage, items, scope, identity)


def counter_key(scope: str, identity: str, length: int) -> str:
    """A window's counter: scope, identity and window length, never the amount (limits'
    ``key_for`` holds it), so a limit changed on the console keeps counting what was spent."""
    return f"LIMITER/{scope}/{identity}/{length}s"


def _spend(storage: Storage, items: Sequence[RateLimitItem], scope: str,
           identity: str) -> list[Quota]:
    """The fixed-window strategy's storage calls (as limits.FixedWindowRateLimiter.hit), keeping
    the count the increment returns: each call's ``remaining`` is its own, exact across
    processes."""
    spent: list[Quota] = []
    refused = False
    for item in items:
        length = item.get_expiry()
        used, reset_at = _count(storage, counter_key(scope, identity, length), length,
                                spend=not refused)
        exceeded = not refused and used > item.amount
        refused = refused or exceeded
        spent.append(Quota(name=f"{scope}-{length}s", limit=item.amount, window=length,
                           remaining=max(0, item.amount - used), reset_at=reset_at,
                           exceeded=exceeded))
    return spent


# One round trip per window: the increment (the expiry set by the first), or only a read, and
# the time left in milliseconds. limits' own get_expiry asks TTL, whole seconds rounded, so a
# window with 0.4 s left showed t=0 while it still refused.
_REDIS_COUNT = b"""
local used = tonumber(redis.call("get", KEYS[1]) or "0")
if ARGV[2] == "1" then
  used = redis.call("incr", KEYS[1])
  if used == 1 then redis.call("pexpire", KEYS[1], ARGV[1]) end
end
return {used, redis.call("pttl", KEYS[1])}
"""


def _count(storage: Storage, key: str, length: int, *, spend: bool) -> tuple[int, float]:
    """The count of ``key`` after one more call (``spend``) or as it stands, and when its window
    ends (UNIX seconds, exact: the headers round it up)."""
    if not isinstance(storage, RedisStorage):
        used = storage.incr(key, length) if spend else storage.get(key)
        return used, storage.get_expiry(key)
    try:
        used, left_ms = _redis_script(storage)(keys=[storage.prefixed_key(key)],
                                               args=[length * 1000, int(spend)])
    except storage.base_exceptions as error:
        raise StorageError(error) from None
    return int(used), time.time() + max(0, int(left_ms)) / 1000.0


@lru_cache(maxsize=8)
def _redis_script(storage: RedisStorage) -> Any:
    """_REDIS_COUNT registered on the storage's client (EVALSHA, loaded again when missing)."""
    return storage.get_connection().register_script(_REDIS_COUNT)


def build_limiter(settings: Settings) -> RateLimiter:
    """The limiter the settings ask for: Redis (API_REDIS_URL, keys under API_REDIS_PREFIX
    + ``:ratelimit``) with this process's memory as its fallback, or memory alone."""
    policies = {scope: getattr(settings, name) for scope, name in SCOPE_SETTINGS.items()}
    if not settings.redis_url:
        return RateLimiter(policies, MemoryStorage())
    redis = RedisStorage(settings.redis_url, key_prefix=f"{settings.redis_prefix}:ratelimit",
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
