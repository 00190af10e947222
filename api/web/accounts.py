"""Member accounts on the web pages: sign-up, login with throttling, sessions and CSRF tokens.

Session ids are random and stored only as SHA-256 hashes; CSRF tokens are an HMAC of the session id
(or, before login, of a random pre-session cookie) under the session secret. Time comes from the
injected clock so throttling and expiry are tested without sleeping.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from peewee import fn

from api.config import Settings
from api.content.members import has_control_characters
from api.models.accounts import LoginFailure, Session
from keys import store
from keys.db import as_tuples, serialised
from keys.models import User
from keys.passwords import check_password, hash_password

SESSION_TTL = 14 * 24 * 3600
FAILURE_WINDOW = 15 * 60
MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_ADDRESS = 20
MIN_PASSWORD = 8
_USERNAME = re.compile(r"[A-Za-z0-9_.-]{2,64}")
_SECRET_FILE = "session_secret"
MIN_SESSION_SECRET = 32  # characters; the generated one has 64 (32 random bytes in hex)
_SECRET_WAIT = 1.0  # seconds a reader waits for a secret file being written (no hard links)


class Refused(Exception):
    """A sign-up or login that cannot be done; the message is shown to the visitor as is."""


class SecretRefused(RuntimeError):
    """The session secret is too short to sign with, or cannot be made (the server does not
    start)."""


def session_secret(settings: Settings) -> bytes:
    """The configured session secret, else one generated once and kept (mode 600) in data_dir;
    SecretRefused for one under MIN_SESSION_SECRET characters."""
    configured = settings.session_secret.reveal() if settings.session_secret else ""
    if configured:
        if len(configured) < MIN_SESSION_SECRET:
            raise SecretRefused(f"API_SESSION_SECRET has {len(configured)} characters, fewer "
                                f"than {MIN_SESSION_SECRET}")
        return configured.encode("utf-8")
    path = Path(settings.data_dir) / _SECRET_FILE
    if not path.exists():
        _create_once(path, secrets.token_hex(32))
    value = _read_secret(path)
    if len(value) < MIN_SESSION_SECRET:
        raise SecretRefused(f"{path} holds {len(value)} characters, fewer than "
                            f"{MIN_SESSION_SECRET}: remove it (a new one is made) or set "
                            f"API_SESSION_SECRET")
    return value.encode("ascii")


def _create_once(path: Path, value: str) -> None:
    """Make ``path`` hold ``value`` unless it exists: written whole to a private temp file beside
    it, then hard-linked to the name, which fails if the name exists. So the file never appears
    empty or half-written, and of processes making it at once exactly one value wins; each reads
    the winner back (os.replace would let a later writer change what earlier ones returned).
    Where hard links are refused (some network and FUSE file systems), the name is created
    exclusively and written in place: readers wait for it (``_read_secret``). SecretRefused
    when neither works."""
    try:
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 600
    except OSError as error:
        raise _cannot_create(path, error) from None
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(value)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temp, path)
        except FileExistsError:  # another process made it first
            pass
        except OSError:
            _create_exclusive(path, value)
    finally:
        os.unlink(temp)


def _create_exclusive(path: Path, value: str) -> None:
    """Create ``path`` (mode 600) holding ``value`` unless it exists, without a hard link."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:  # another process made it first
        return
    except OSError as error:
        raise _cannot_create(path, error) from None
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(value)
        out.flush()
        os.fsync(out.fileno())


def _cannot_create(path: Path, error: OSError) -> SecretRefused:
    return SecretRefused(f"cannot create {path} ({error.strerror}): set API_SESSION_SECRET "
                         f"(at least {MIN_SESSION_SECRET} characters) instead")


def _read_secret(path: Path) -> str:
    """The file's secret; a short one is read again for up to ``_SECRET_WAIT`` seconds (another
    process may be writing it in place), then returned as it is."""
    deadline = time.monotonic() + _SECRET_WAIT
    while True:
        value = path.read_text(encoding="ascii").strip()
        if len(value) >= MIN_SESSION_SECRET or time.monotonic() >= deadline:
            return value
        time.sleep(0.02)


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()


class Accounts:
    """Sessions, CSRF tokens and login throttling over the database, with an injected clock."""

    def __init__(self, secret: bytes, clock: Callable[[], float]) -> None:
        self.secret = secret
        self.clock = clock
        self._dummy_hash: str | None = None

    def now(self) -> int:
        """The injected clock in whole seconds."""
        return int(self.clock())

    # -- sessions ----------------------------------------------------------------------------

    def start_session(self, user: User) -> str:
        """A new session id for ``user`` (always new: no fixation across a login)."""
        session_id = secrets.token_urlsafe(32)
        now = self.now()
        Session.create(id_hash=_hash(session_id), user=user, created_at=now,
                       expires_at=now + SESSION_TTL)
        return session_id

    def user_for(self, session_id: str) -> User | None:
        """The open account a live session belongs to, or None."""
        if not session_id:
            return None
        row = (Session
               .select(Session, User)
               .join(User)
               .where(Session.id_hash == _hash(session_id), Session.expires_at > self.now())
               .first())
        return row.user if row is not None and row.user.is_open else None

    def end_session(self, session_id: str) -> None:
        """Forget a session (logout)."""
        Session.delete().where(Session.id_hash == _hash(session_id)).execute()

    # -- CSRF --------------------------------------------------------------------------------

    def csrf_token(self, seed: str) -> str:
        """The form token bound to ``seed`` (a session id or pre-session cookie)."""
        return hmac.new(self.secret, b"csrf:" + seed.encode("utf-8", "surrogatepass"),
                        hashlib.sha256).hexdigest()

    def csrf_ok(self, seed: str, sent: str) -> bool:
        """Whether ``sent`` is the token for ``seed``; constant time, safe on any input."""
        if not seed or not sent:
            return False
        return hmac.compare_digest(self.csrf_token(seed).encode("ascii"),
                                   sent.encode("utf-8", "surrogatepass"))

    # -- sign-up and login -------------------------------------------------------------------

    def sign_up(self, username: str, realname: str, password: str) -> User:
        """Create an account; Refused with a readable reason when the form is not acceptable."""
        username = username.strip()
        if not _USERNAME.fullmatch(username) or store.reserved_username(username):
            raise Refused("Choose a user name of 2 to 64 letters, digits, dots, dashes or "
                          "underscores, not only digits or dots.")
        if has_control_characters(realname):
            raise Refused("Choose a real name without line breaks or control characters.")
        if len(password) < MIN_PASSWORD:
            raise Refused(f"Choose a password of at least {MIN_PASSWORD} characters.")
        # Saying so tells no more than user.get tells anyone (docs/protocol-choices.md, "Rate
        # limits"); checked before the password is hashed, so a probe costs no argon2 run.
        taken = Refused("This user name is taken. Choose another.")
        if store.find_user_by_username(username) is not None:
            raise taken
        try:
            return store.add_user(username, password, realname=realname.strip()[:128])
        except store.KeyStoreError:
            raise taken from None

    def login(self, username: str, password: str, address: str) -> User:
        """The account if the password is right; Refused when wrong, throttled or closed.

        Each attempt first books a failure for the account and the address, checked and written
        as one under ``serialised`` (so parallel guesses, in any number of processes, cannot all
        slip under the limit), and hashes the password outside that lock; a right password takes
        its booking back.
        """
        username = username.strip()
        account, from_address = "user:" + username.lower()[:64], "addr:" + address[:64]
        with serialised("login:" + account, "login:" + from_address):
            if self._throttled(account, from_address):
                raise Refused("Too many failed logins. Wait 15 minutes and try again.")
            booked = [LoginFailure.create(scope=scope, at=self.now()).id
                      for scope in (account, from_address)]
        user = store.find_user_by_username(username)
        # An unknown name costs the same hashing time as a known one: no user enumeration.
        stored = user.password_hash if user is not None else self._dummy()
        if not check_password(stored, password) or user is None:
            raise Refused("Wrong user name or password.")
        LoginFailure.delete().where(LoginFailure.id.in_(booked)).execute()
        if not user.is_open:
            raise Refused("This account is closed.")
        LoginFailure.delete().where(LoginFailure.scope == account).execute()
        return user

    def _throttled(self, account_scope: str, address_scope: str) -> bool:
        since = self.now() - FAILURE_WINDOW
        counts: dict[str, int] = dict(as_tuples(
            LoginFailure
            .select(LoginFailure.scope, fn.COUNT(LoginFailure.id))
            .where(LoginFailure.scope.in_((account_scope, address_scope)), LoginFailure.at > since)
            .group_by(LoginFailure.scope)
            .tuples()))
        return (counts.get(account_scope, 0) >= MAX_FAILURES_PER_ACCOUNT
                or counts.get(address_scope, 0) >= MAX_FAILURES_PER_ADDRESS)

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = hash_password(secrets.token_hex(16))
        return self._dummy_hash
