"""Issuing and managing keys and users, and the cached key lookup the API's hot path uses."""

from __future__ import annotations

import ipaddress
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from peewee import IntegrityError

from keys.db import db
from keys.models import ApiKey, User
from keys.passwords import hash_password
from keys.secret import Secret

AUTH_TYPES = ("desktop", "web")
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class KeyStoreError(Exception):
    """A management request that cannot be done (unknown owner, bad URL, duplicate user …)."""


@dataclass(frozen=True)
class KeyRecord:
    """What the API needs about a key on every call; immutable so it can be cached and shared."""

    key: str
    secret: Secret
    owner_id: int
    name: str
    description: str
    auth_type: str
    callback_url: str
    enabled: bool
    always_signed: bool
    allowed_ips: tuple[str, ...]  # addresses or CIDR ranges, as stored; empty allows every one
    networks: tuple[IpNetwork, ...] = field(default=(), compare=False, repr=False)

    @classmethod
    def of(cls, row: ApiKey) -> KeyRecord:
        """The record for a database row."""
        ips = split_networks(row.allowed_ips)
        return cls(key=row.key, secret=Secret(row.secret), owner_id=row.owner_id,
                   name=row.name, description=row.description, auth_type=row.auth_type,
                   callback_url=row.callback_url, enabled=row.enabled,
                   always_signed=row.always_signed, allowed_ips=ips,
                   networks=tuple(net for net in map(_network_or_none, ips) if net is not None))

    def allows(self, address: str) -> bool:
        """Whether a call from ``address`` may use this key (code 111 when not).

        An empty list allows every address. An entry that does not parse (written by hand in the
        database) matches nothing, so a broken list never opens the key to everyone.
        """
        if not self.allowed_ips:
            return True
        try:
            ip = ipaddress.ip_address(address.strip().removeprefix("[").removesuffix("]"))
        except ValueError:
            return False
        mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:10.1.2.3 from a dual-stack socket
        return any(ip in net or (mapped is not None and mapped in net) for net in self.networks)


class KeyCache:
    """Key lookups cached for ``ttl`` seconds (misses too); ``invalidate`` after any change."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[str, tuple[float, KeyRecord | None]] = {}
        self._lock = threading.Lock()

    def lookup(self, key: str) -> KeyRecord | None:
        """The key's record, or None when it does not exist."""
        now = self.clock()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        row = ApiKey.get_or_none(ApiKey.key == key) if _looks_like_key(key) else None
        record = KeyRecord.of(row) if row else None
        with self._lock:
            if len(self._entries) > 100_000:  # unknown keys must not grow this without bound
                self._entries.clear()
            self._entries[key] = (now + self.ttl, record)
        return record

    def invalidate(self, key: str | None = None) -> None:
        """Forget one key (or all) so the next lookup reads the database."""
        with self._lock:
            if key is None:
                self._entries.clear()
            else:
                self._entries.pop(key, None)


def split_networks(stored: str) -> tuple[str, ...]:
    """The entries of a stored ``allowed_ips`` value (comma-separated)."""
    return tuple(entry.strip() for entry in stored.split(",") if entry.strip())


def _network_or_none(text: str) -> IpNetwork | None:
    """A range, with an IPv4-mapped IPv6 range (``::ffff:10.0.0.0/104``) written as the IPv4 range
    it means; a zone id (``fe80::1%eth0``) names an interface, not an address, and is refused."""
    if "%" in text:
        return None
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    mapped = getattr(network.network_address, "ipv4_mapped", None)
    if mapped is not None and network.prefixlen >= 96:
        return ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}", strict=False)
    return network


def _looks_like_key(key: str) -> bool:
    return 0 < len(key) <= 32 and all(c in "0123456789abcdefABCDEF" for c in key)


def add_user(username: str, password: str, *, realname: str = "", email: str = "",
             is_pro: bool = False) -> User:
    """Create a member account; the password is stored only as an argon2 hash."""
    username = username.strip()
    if not username or len(username) > 64:
        raise KeyStoreError("username must be 1 to 64 characters")
    if not password:
        raise KeyStoreError("password must not be empty")
    # Hashed before any transaction: argon2 takes a fifth of a second, and on SQLite a transaction
    # holds the one write lock from its BEGIN (IMMEDIATE), which every other writer would wait on.
    password_hash = hash_password(password)
    try:
        with db.atomic():
            return User.create(username=username, realname=realname or username, email=email,
                               password_hash=password_hash, is_pro=is_pro)
    except IntegrityError:
        raise KeyStoreError(f"user {username!r} already exists") from None


def find_user_by_username(username: str) -> User | None:
    """The member called exactly ``username``, whatever the account's status, or None."""
    return User.get_or_none(User.username == username)


def get_user_by_username(username: str) -> User:
    """``find_user_by_username``, or a KeyStoreError when nobody is called so."""
    user = find_user_by_username(username)
    if user is None:
        raise KeyStoreError(f"no user {username!r}")
    return user


def check_callback(url: str) -> str:
    """A web key's callback must be an absolute http(s) URL without a fragment."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
        raise KeyStoreError(f"callback must be an absolute http(s) URL: {url!r}")
    return url


def create_key(owner: User, name: str, *, description: str = "", auth_type: str = "desktop",
               callback_url: str = "", always_signed: bool = False) -> ApiKey:
    """Issue a new key (32 lowercase hex) and secret (32 hex) for ``owner``."""
    if auth_type not in AUTH_TYPES:
        raise KeyStoreError(f"auth must be one of {', '.join(AUTH_TYPES)}")
    if not name.strip():
        raise KeyStoreError("name must not be empty")
    if auth_type == "web":
        if not callback_url:
            raise KeyStoreError("a web key needs --callback URL")
        check_callback(callback_url)
    elif callback_url:
        raise KeyStoreError("only web keys have a callback URL")
    with db.atomic():
        return ApiKey.create(key=secrets.token_hex(16), secret=secrets.token_hex(16), owner=owner,
                             name=name.strip(), description=description, auth_type=auth_type,
                             callback_url=callback_url, always_signed=always_signed)


def set_enabled(key: str, enabled: bool) -> ApiKey:
    """Enable or disable a key (disabled keys get 101)."""
    row = ApiKey.get_or_none(ApiKey.key == key)
    if row is None:
        raise KeyStoreError(f"no key {key!r}")
    row.enabled = enabled
    row.save(only=[ApiKey.enabled])  # one column: a concurrent last_used_at stamp survives
    return row


def list_keys(owner: User | None = None) -> list[ApiKey]:
    """Keys, oldest first, optionally of one owner (owners joined: no query per row)."""
    query = (ApiKey
             .select(ApiKey, User)
             .join(User)
             .order_by(ApiKey.id))
    if owner is not None:
        query = query.where(ApiKey.owner == owner)
    return list(query)


def set_user_open(username: str, is_open: bool) -> User:
    """Open or close a member account; a closed account's tokens get 108 on every call."""
    user = get_user_by_username(username)
    user.status = "open" if is_open else "closed"
    user.save(only=[User.status])
    return user


def parse_networks(values: Iterable[str]) -> list[str]:
    """Addresses or CIDR ranges (IPv4 or IPv6) in canonical form (``10.1.2.3/8`` becomes
    ``10.0.0.0/8``, a lone address ``/32`` or ``/128``); a KeyStoreError names the first bad one."""
    out: list[str] = []
    for value in values:
        network = _network_or_none(value.strip()) if value.strip() else None
        if network is None:
            raise KeyStoreError(f"not an IP address or CIDR range: {value!r}")
        if str(network) not in out:
            out.append(str(network))
    return out


def _key_row(key: str) -> ApiKey:
    row = ApiKey.get_or_none(ApiKey.key == key.strip().lower())
    if row is None:
        raise KeyStoreError(f"no key {key!r}")
    return row


def allowed_networks(key: str) -> list[str]:
    """The addresses and ranges a key may be used from; empty means every address."""
    return list(split_networks(_key_row(key).allowed_ips))


def set_allowed_networks(key: str, networks: Iterable[str]) -> list[str]:
    """Let ``key`` be used only from these addresses or ranges (replacing the list; an empty one
    allows every address again). Calls from elsewhere get 111. Returns the list as stored."""
    row = _key_row(key)
    parsed = parse_networks(networks)
    row.allowed_ips = ",".join(parsed)
    row.save(only=[ApiKey.allowed_ips])
    return parsed
