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

Storage: this process's memory (``WindowCounts``), or Redis when API_REDIS_URL is set, so every
process spends one budget. Redis unreachable: the call is counted in this process's memory for
FALLBACK_SECONDS, with a warning in the log, then Redis is tried again; limits keep holding per
process rather than refusing every call (a 503) or none.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache, partial
from typing import Any, NamedTuple

from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import RedisStorage

from api.config import Settings
from api.core.context import Quota, exceeded

log = logging.getLogger("api.ratelimit")

FALLBACK_SECONDS = 30.0  # after a Redis failure, how long this process counts by itself
REDIS_TIMEOUT = 1.0  # seconds; a stalled Redis must not hold request threads for long
# The scopes and the settings that hold their policies.
MAX_PLANS = 10_000  # parsed policies kept: one per scope and per key with its own limit
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

    def __init__(self, policies: Mapping[str, str], storage: RedisStorage | WindowCounts, *,
                 fallback: WindowCounts | None = None,
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
        self._plans: dict[tuple[str, str], tuple[Window, ...]] = {}  # (scope, policy) -> windows
        self._reported: set[str] = set()  # unexpected error types already logged

    def spend(self, quotas: list[Quota], scope: str, identity: str, *, policy: str = "") -> bool:
        """Spend one call of ``identity``'s budget in ``scope``, window by window from the
        shortest; past an exceeded window the longer ones are only read (a call refused for a
        burst does not eat the hour). Appends the windows to ``quotas``; True when refused.
        A limiter that fails unexpectedly lets the call through (logged once per error type):
        a broken counter must not turn every call into a 500."""
        plan = self._plans.get((scope, policy))
        if plan is None:
            plan = self._plan(scope, policy)
        if not plan:
            return False
        try:
            if self.fallback is None and isinstance(self.storage, WindowCounts):
                spent = self.storage.spend(plan, identity)  # the common case, shortest
            else:
                spent = self._counted(plan, identity)
        except Exception as error:  # anything: the call goes on uncounted
            with self._lock:
                first = type(error).__name__ not in self._reported
                self._reported.add(type(error).__name__)
            if first:  # the type only: a message may hold a URL and its password
                log.error("rate limits: counting failed (%s); calls pass uncounted while it "
                          "lasts", type(error).__name__)
            return False
        quotas.extend(spent)
        return exceeded(spent)

    def _plan(self, scope: str, policy: str) -> tuple[Window, ...]:
        """The windows of ``scope`` (``policy``: a key's own limit, else the scope's setting),
        kept for the next call; a key's limit written by hand that does not parse: the default."""
        try:
            items = windows(policy or self.policies.get(scope, ""))
        except ValueError:
            items = windows(self.policies.get(scope, ""))
        plan = tuple(Window.of(scope, item) for item in items)
        if len(self._plans) < MAX_PLANS:  # one per distinct policy: the keys' own limits
            self._plans[(scope, policy)] = plan
        return plan

    def _counted(self, plan: Sequence[Window], identity: str) -> list[Quota]:
        """The windows spent in the storage, or in the fallback while Redis fails."""
        fallback = self.fallback
        if fallback is None or self.clock() >= self._failed_until:
            try:
                return _spend(self.storage, plan, identity)
            except StorageError as error:
                if fallback is None:
                    raise
                with self._lock:
                    self._failed_until = self.clock() + FALLBACK_SECONDS
                # The error's type only: its text may hold the Redis URL and its password.
                log.warning("rate limits: redis unavailable (%s); counting in this process's "
                            "memory for %d s", type(error.storage_error).__name__,
                            FALLBACK_SECONDS)
        return _spend(fallback, plan, identity)


class WindowCounts:
    """This process's fixed-window counters: a dict and one lock, about 1 µs a window. (limits'
    MemoryStorage runs a timer thread, races on it when threads meet, and cost ~10 µs a call on
    the hot path.) A window's entry is made by its first call and replaced once it has ended;
    ended ones are swept every SWEEP_SECONDS, so memory holds only windows still running."""

    SWEEP_SECONDS = 60.0

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._windows: dict[str, list[float]] = {}  # key -> [used, ends_at]
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def spend(self, plan: Sequence[Window], identity: str) -> list[Quota]:
        """``_spend`` for this process's memory: every window under one lock. (Written for
        speed: every API call runs it twice.)"""
        now = self.clock()
        spent: list[Quota] = []
        refused = False
        with self._lock:  # the dict too is read under it: a sweep replaces it
            windows = self._windows
            if now >= self._next_sweep:
                self._windows = windows = {k: w for k, w in windows.items() if w[1] > now}
                self._next_sweep = now + self.SWEEP_SECONDS
            for window in plan:
                key = f"LIMITER/{window.scope}/{identity}{window.suffix}"  # counter_key
                counts = windows.get(key)
                if counts is None or counts[1] <= now:
                    counts = [0, now + window.length]
                    if not refused:
                        windows[key] = counts
                if refused:
                    used, exceeded = counts[0], False
                else:
                    counts[0] = used = counts[0] + 1
                    refused = exceeded = used > window.amount
                spent.append(_quota((window.name, window.amount, window.length,
                                     window.amount - used if used < window.amount else 0,
                                     counts[1], exceeded, window.policy)))
        return spent

    def get(self, key: str) -> int:
        """The count of a window as it stands (0 once it has ended)."""
        counts = self._windows.get(key)
        return int(counts[0]) if counts is not None and counts[1] > self.clock() else 0


class Window(NamedTuple):
    """One window of a scope's policy, as the headers name it."""

    scope: str
    amount: int
    length: int  # seconds
    name: str  # "key-3600s"
    suffix: str  # what its counter_key puts after the identity: "/3600s"
    policy: str  # its item of the RateLimit-Policy header: '"key-3600s";q=5000;w=3600'

    @classmethod
    def of(cls, scope: str, item: RateLimitItem) -> Window:
        length, name = item.get_expiry(), f"{scope}-{item.get_expiry()}s"
        return cls(scope, item.amount, length, name, f"/{length}s",
                   f'"{name}";q={item.amount};w={length}')


def counter_key(scope: str, identity: str, length: int) -> str:
    """A window's counter: scope, identity and window length, never the amount (limits'
    ``key_for`` holds it), so a limit changed on the console keeps counting what was spent."""
    return f"LIMITER/{scope}/{identity}/{length}s"


# Quota(...) runs a Python-level __new__; every call makes two to four.
_quota = partial(tuple.__new__, Quota)


def _spend(storage: RedisStorage | WindowCounts, plan: Sequence[Window],
           identity: str) -> list[Quota]:
    """The fixed-window strategy's storage calls (as limits.FixedWindowRateLimiter.hit), keeping
    the count the increment returns: each call's ``remaining`` is its own, exact across
    processes. Past an exceeded window the longer ones are only read."""
    if isinstance(storage, WindowCounts):
        return storage.spend(plan, identity)
    spent: list[Quota] = []
    refused = False
    for window in plan:
        used, reset_at = _count(storage, counter_key(window.scope, identity, window.length),
                                window.length, spend=not refused)
        exceeded = not refused and used > window.amount
        refused = refused or exceeded
        spent.append(Quota(window.name, window.amount, window.length,
                           max(0, window.amount - used), reset_at, exceeded, window.policy))
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


def _count(storage: RedisStorage, key: str, length: int, *,
           spend: bool) -> tuple[int, float]:
    """The count of ``key`` in Redis after one more call (``spend``) or as it stands, and when
    its window ends (UNIX seconds, exact: the headers round it up)."""
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
        return RateLimiter(policies, WindowCounts())
    redis = RedisStorage(settings.redis_url, key_prefix=f"{settings.redis_prefix}:ratelimit",
                         wrap_exceptions=True, socket_timeout=REDIS_TIMEOUT,
                         socket_connect_timeout=REDIS_TIMEOUT)
    return RateLimiter(policies, redis, fallback=WindowCounts())


def headers(quotas: Sequence[Quota], *, now: float | None = None) -> list[tuple[str, str]]:
    """The response headers for the windows a call spent: ``RateLimit-Policy`` and ``RateLimit``
    (draft-ietf-httpapi-ratelimit-headers-10: one item per window, ``q``/``w`` and ``r``/``t``)
    and ``X-RateLimit-Limit/Remaining/Reset`` of the window that binds (the exceeded one, else
    the one with the fewest calls left), its reset in UNIX seconds as GitHub's API gives it."""
    if not quotas:
        return []
    now = time.time() if now is None else now
    binding = quotas[0]  # the exceeded one, else the fewest left, else the latest reset
    for quota in quotas[1:]:  # plain code: every API answer carries these (bench/wsgi_bench.py)
        if binding.exceeded:
            break
        if quota.exceeded or quota.remaining < binding.remaining or (
                quota.remaining == binding.remaining and quota.reset_at > binding.reset_at):
            binding = quota
    policy = state = ""
    for name, limit, window, remaining, reset_at, _exceeded, item in quotas:
        left = math.ceil(reset_at - now)
        policy += ", " + (item or f'"{name}";q={limit};w={window}')
        state += f', "{name}";r={remaining};t={left if left > 0 else 0}'
    return [
        ("RateLimit-Policy", policy[2:]),
        ("RateLimit", state[2:]),
        ("X-RateLimit-Limit", str(binding.limit)),
        ("X-RateLimit-Remaining", str(binding.remaining)),
        ("X-RateLimit-Reset", str(math.ceil(binding.reset_at))),
    ]


def retry_after(quotas: Sequence[Quota], *, now: float | None = None) -> int:
    """Seconds until every exceeded window is whole again (at least 1): a 429's Retry-After."""
    now = time.time() if now is None else now
    return max([1, *(_seconds(quota, now) for quota in quotas if quota.exceeded)])


def _seconds(quota: Quota, now: float) -> int:
    left = math.ceil(quota.reset_at - now)
    return left if left > 0 else 0
