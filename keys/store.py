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

from keys.changes import notify_change
from keys.db import db, locked
from keys.models import ApiKey, KeyAudit, User
from keys.passwords import hash_password
from keys.secret import Secret

AUTH_TYPES = ("desktop", "web")
MAX_GRACE = 7 * 24 * 3600  # the longest an old secret may keep signing after a rotation
CLI_ACTOR = "cli"  # who the audit list names for changes made with ``python -m keys``
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


_NO_SECRET = Secret("")


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
    previous_secret: Secret = _NO_SECRET  # the secret before the last rotation, while it signs
    previous_expires_at: int = 0  # UNIX seconds; the previous secret signs while now < this
    require_hmac: bool = False  # MD5 api_sig refused (105): HMAC-SHA256 or OAuth only
    legacy_oauth: bool = False  # OAuth 1.0 clients may exchange a request token with no verifier
    rate_limit: str = ""  # this key's own limit ("limits" notation); "" is the server's default

    def secrets_at(self, now: float) -> tuple[Secret, ...]:
        """The secrets that sign at ``now``: the current one, and the previous one during the
        grace period its rotation gave it (until ``previous_expires_at``, exclusive)."""
        if self.previous_secret and now < self.previous_expires_at:
            return (self.secret, self.previous_secret)
        return (self.secret,)

    @classmethod
    def of(cls, row: ApiKey) -> KeyRecord:
        """The record for a database row."""
        ips = split_networks(row.allowed_ips)
        return cls(key=row.key, secret=Secret(row.secret), owner_id=row.owner_id,
                   name=row.name, description=row.description, auth_type=row.auth_type,
                   callback_url=row.callback_url, enabled=row.enabled,
                   always_signed=row.always_signed, allowed_ips=ips,
                   networks=tuple(net for net in map(_network_or_none, ips) if net is not None),
                   previous_secret=Secret(row.previous_secret),
                   previous_expires_at=row.previous_expires_at,
                   require_hmac=row.require_hmac, legacy_oauth=row.legacy_oauth,
                   rate_limit=row.rate_limit)

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
        self._generation = 0  # bumped by invalidate: a lookup that raced one does not cache
        # Lookups answered from the cache and from the database, for the metrics (a plain add:
        # under the GIL an int attribute's += is not interrupted in practice, and a lost one
        # would only blur a statistic).
        self.hits = 0
        self.misses = 0

    def lookup(self, key: str) -> KeyRecord | None:
        """The key's record, or None when it does not exist."""
        now = self.clock()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            self.hits += 1
            return entry[1]
        self.misses += 1
        generation = self._generation
        row = ApiKey.get_or_none(ApiKey.key == key) if _looks_like_key(key) else None
        record = KeyRecord.of(row) if row else None
        with self._lock:
            if len(self._entries) > 100_000:  # unknown keys must not grow this without bound
                self._entries.clear()
            if generation == self._generation:  # else the row read may predate the change
                self._entries[key] = (now + self.ttl, record)
        return record

    def invalidate(self, key: str | None = None) -> None:
        """Forget one key (or all) so the next lookup reads the database."""
        with self._lock:
            self._generation += 1
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


def reserved_username(username: str) -> bool:
    """A name no member may take: digits only (``/home/<digits>`` and user_id read an id) or
    dots only (``.`` and ``..`` are path segments: ``/home/..`` is ``/``)."""
    return username.isdigit() or not username.strip(".")


def add_user(username: str, password: str, *, realname: str = "", email: str = "",
             is_pro: bool = False, is_admin: bool = False) -> User:
    """Create a member account; the password is stored only as an argon2 hash."""
    username = username.strip()
    if not username or len(username) > 64:
        raise KeyStoreError("username must be 1 to 64 characters")
    if reserved_username(username):
        raise KeyStoreError("username must not be only digits (an id) or only dots")
    if not password:
        raise KeyStoreError("password must not be empty")
    # Hashed before any transaction: argon2 takes a fifth of a second, and on SQLite a transaction
    # holds the one write lock from its BEGIN (IMMEDIATE), which every other writer would wait on.
    password_hash = hash_password(password)
    try:
        with db.atomic():
            return User.create(username=username, realname=realname or username, email=email,
                               password_hash=password_hash, is_pro=is_pro, is_admin=is_admin)
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


MAX_CALLBACK = 2048  # the column's length


def check_callback(url: str) -> str:
    """A web key's callback must be an absolute http(s) URL without a fragment, credentials,
    spaces or control characters, and fit its column."""
    parts = urlsplit(url)
    if (parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment
            or parts.username is not None or len(url) > MAX_CALLBACK
            or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url)):
        raise KeyStoreError(f"callback must be an absolute http(s) URL of at most {MAX_CALLBACK}"
                            f" characters, without spaces or credentials: {url[:100]!r}")
    return url


def _check_kind(auth_type: str, callback_url: str) -> None:
    if auth_type not in AUTH_TYPES:
        raise KeyStoreError(f"auth must be one of {', '.join(AUTH_TYPES)}")
    if auth_type == "web":
        if not callback_url:
            raise KeyStoreError("a web key needs --callback URL")
        check_callback(callback_url)
    elif callback_url:
        raise KeyStoreError("only web keys have a callback URL")


def create_key(owner: User, name: str, *, description: str = "", auth_type: str = "desktop",
               callback_url: str = "", always_signed: bool = False,
               actor: str = CLI_ACTOR, now: int | None = None) -> ApiKey:
    """Issue a new key (32 lowercase hex) and secret (32 hex) for ``owner``; audited."""
    _check_kind(auth_type, callback_url)
    if not name.strip():
        raise KeyStoreError("name must not be empty")
    if len(name.strip()) > 128:
        raise KeyStoreError("name must be at most 128 characters")
    with db.atomic():
        row = ApiKey.create(key=secrets.token_hex(16), secret=secrets.token_hex(16), owner=owner,
                            name=name.strip(), description=description, auth_type=auth_type,
                            callback_url=callback_url, always_signed=always_signed,
                            **({} if now is None else {"created_at": now}))
        audit(row, actor, f"registered the {auth_type} application {row.name!r}", now=now)
        return row


def audit(row: ApiKey, actor: str, action: str, *, now: int | None = None) -> None:
    """Add one line to the key's audit list (never a secret in ``action``). Every change to a
    key is audited, so this also tells the other processes' key caches (``keys.changes``)."""
    KeyAudit.create(api_key=row, actor=actor[:64], action=action,
                    at=int(time.time()) if now is None else now)
    notify_change(row.key)


def audit_list(row: ApiKey, limit: int = 200) -> list[KeyAudit]:
    """The key's audit list, newest first."""
    return list(KeyAudit.select().where(KeyAudit.api_key == row)
                .order_by(KeyAudit.at.desc(), KeyAudit.id.desc()).limit(limit))


def set_enabled(key: str, enabled: bool, *, actor: str = CLI_ACTOR,
                now: int | None = None) -> ApiKey:
    """Enable or disable a key (disabled keys get 101); audited when it changes."""
    row = ApiKey.get_or_none(ApiKey.key == key)
    if row is None:
        raise KeyStoreError(f"no key {key!r}")
    if row.enabled != enabled:
        with db.atomic():
            row.enabled = enabled
            row.save(only=[ApiKey.enabled])  # one column: a concurrent last_used_at stamp survives
            audit(row, actor, "enabled the key" if enabled else "disabled the key", now=now)
    return row


def rotate_secret(key: str, grace: int, *, now: int | None = None,
                  actor: str = CLI_ACTOR) -> ApiKey:
    """Give ``key`` a new secret; the old one keeps signing for ``grace`` seconds (0 to 7 days;
    0 refuses it at once). A previous secret still in its grace is dropped: only the secret just
    replaced survives. Audited, without either secret."""
    if not 0 <= grace <= MAX_GRACE:
        raise KeyStoreError(f"grace must be 0 to {MAX_GRACE} seconds (7 days)")
    now = int(time.time()) if now is None else now
    with db.atomic():
        row = key_row(key)
        row.previous_secret = row.secret if grace else ""
        row.previous_expires_at = now + grace if grace else 0
        row.secret = secrets.token_hex(16)
        row.save(only=[ApiKey.secret, ApiKey.previous_secret, ApiKey.previous_expires_at])
        until = (time.strftime(" (the old one signs until %Y-%m-%d %H:%M:%S UTC)",
                               time.gmtime(now + grace)) if grace else
                 " (the old one stopped signing at once)")
        audit(row, actor, "rotated the secret" + until, now=now)
        return row


def update_key(key: str, *, actor: str, now: int | None = None, name: str | None = None,
               description: str | None = None, callback_url: str | None = None,
               always_signed: bool | None = None, enabled: bool | None = None,
               allowed: Iterable[str] | None = None, require_hmac: bool | None = None,
               legacy_oauth: bool | None = None, rate_limit: str | None = None) -> ApiKey:
    """Change a key's settings (what is None stays); one audit line per setting that changed.
    A KeyStoreError (bad name, callback, CIDR or rate limit) changes nothing."""
    with db.atomic():
        row = key_row(key)
        changes: list[str] = []
        if name is not None and name.strip() != row.name:
            if not name.strip() or len(name.strip()) > 128:
                raise KeyStoreError("The name must be 1 to 128 characters.")
            changes.append(f"renamed the application from {row.name!r} to {name.strip()!r}")
            row.name = name.strip()
        if description is not None and description != row.description:
            changes.append("changed the description")
            row.description = description
        if callback_url is not None and callback_url != row.callback_url:
            _check_kind(row.auth_type, callback_url)
            changes.append(f"set the callback URL to {callback_url}")
            row.callback_url = callback_url
        switches = ((ApiKey.always_signed, always_signed, "turned 'always signed' {}"),
                    (ApiKey.enabled, enabled, "{}abled the key"),
                    (ApiKey.require_hmac, require_hmac, "turned 'require HMAC' {}"),
                    (ApiKey.legacy_oauth, legacy_oauth, "turned 'OAuth 1.0 clients' {}"))
        for column, value, what in switches:
            if value is not None and value != getattr(row, column.name):
                words = ("en", "dis") if column is ApiKey.enabled else ("on", "off")
                changes.append(what.format(words[0] if value else words[1]))
                setattr(row, column.name, value)
        if allowed is not None:
            parsed = ",".join(parse_networks(allowed))
            if parsed != row.allowed_ips:
                changes.append("set the allowed addresses to "
                               + (parsed.replace(",", ", ") or "every address"))
                row.allowed_ips = parsed
        if rate_limit is not None and check_rate_limit(rate_limit) != row.rate_limit:
            row.rate_limit = check_rate_limit(rate_limit)
            changes.append("set the rate limit to " + (row.rate_limit or "the server's default"))
        if changes:
            row.save(only=[ApiKey.name, ApiKey.description, ApiKey.callback_url,
                           ApiKey.always_signed, ApiKey.enabled, ApiKey.allowed_ips,
                           ApiKey.require_hmac, ApiKey.legacy_oauth, ApiKey.rate_limit])
            for change in changes:
                audit(row, actor, change, now=now)
        return row


def check_rate_limit(text: str) -> str:
    """A rate limit as stored: the ``limits`` library's notation ("3600/hour", several joined by
    ";" or ","), normalised; "" for the server's default. KeyStoreError when it does not parse."""
    from limits import parse_many

    text = text.strip()
    if not text:
        return ""
    try:
        items = parse_many(text)
    except ValueError:
        raise KeyStoreError(f"not a rate limit: {text!r} (write e.g. 3600/hour or "
                            "10/second;1000/hour)") from None
    if len(text) > 64 or not items:
        raise KeyStoreError("a rate limit is at most 64 characters")
    return ";".join(f"{item.amount}/{item.multiples} {item.GRANULARITY.name}"
                    if item.multiples > 1 else f"{item.amount}/{item.GRANULARITY.name}"
                    for item in items)


def list_keys(owner: User | None = None) -> list[ApiKey]:
    """Keys, oldest first, optionally of one owner (owners joined: no query per row)."""
    query = (ApiKey
             .select(ApiKey, User)
             .join(User)
             .order_by(ApiKey.id))
    if owner is not None:
        query = query.where(ApiKey.owner == owner)
    return list(query)


def set_user_admin(username: str, is_admin: bool) -> User:
    """Make a member a site administrator (every key at /admin/keys), or no longer one."""
    user = get_user_by_username(username)
    user.is_admin = is_admin
    user.save(only=[User.is_admin])
    return user


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


def key_row(key: str) -> ApiKey:
    """The key's row; inside a transaction on PostgreSQL it stays locked until the change is
    written, so two rotations or a settings save beside an admin's disable never lose an update."""
    row = locked(ApiKey.select().where(ApiKey.key == key.strip().lower()), ApiKey).first()
    if row is None:
        raise KeyStoreError(f"no key {key!r}")
    return row


def allowed_networks(key: str) -> list[str]:
    """The addresses and ranges a key may be used from; empty means every address."""
    return list(split_networks(key_row(key).allowed_ips))


def set_allowed_networks(key: str, networks: Iterable[str], *, actor: str = CLI_ACTOR,
                         now: int | None = None) -> list[str]:
    """Let ``key`` be used only from these addresses or ranges (replacing the list; an empty one
    allows every address again). Calls from elsewhere get 111. Returns the list as stored."""
    row = update_key(key, actor=actor, now=now, allowed=networks)
    return list(split_networks(row.allowed_ips))
