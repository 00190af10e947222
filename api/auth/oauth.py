"""The OAuth 1.0 / 1.0a provider (spec §5.5, docs/oauth.md) on oauthlib's RFC 5849 endpoints:
request tokens, the consent page's decision, access tokens, and OAuth-signed API calls.

oauthlib reads the parameters (Authorization header, query, urlencoded body), builds the base
string and checks HMAC-SHA1, HMAC-SHA256 and PLAINTEXT signatures; ``Validator`` is its storage
and policy (oauth_request_tokens, tokens, ctx.nonces) and the endpoints add the original's MD5
(api.signing.oauth1). oauthlib calls every protocol fault ``invalid_request``, so before it runs,
``_check_protocol`` gives each the code spec §3.1 has for it (130-135); after it, the validator's
log says which check refused (101 key, 107 token or verifier, 105 signature). A nonce is recorded
(133 when used) only once oauthlib found the request valid, so junk never fills the store.

oauthlib's ``Request`` answers any attribute it lacks with the request parameter of that name, so
what the validator learns about a request lives in a ``_State`` read from the request's own
``__dict__`` (``vars``), never through ``getattr`` or ``hasattr``.
"""

from __future__ import annotations

import hmac
import logging
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from oauthlib.oauth1 import (
    AccessTokenEndpoint,
    RequestTokenEndpoint,
    RequestValidator,
    ResourceEndpoint,
    SignatureOnlyEndpoint,
)
from oauthlib.oauth1.rfc5849 import (
    SIGNATURE_HMAC_SHA1,
    SIGNATURE_HMAC_SHA256,
    SIGNATURE_PLAINTEXT,
    signature,
    utils,
)
from oauthlib.oauth1.rfc5849 import errors as oauth_errors
from oauthlib.oauth1.rfc5849.endpoints.base import BaseEndpoint

from api.auth.frobs import PERM_PREFIX, FlowError
from api.auth.tokens import token_hash
from api.core import errors
from api.core.context import AppContext, OAuthCaller, OAuthRequest, Quota
from api.models.grants import OAuthRequestToken, Token, levels_of
from api.runtime import ratelimit
from api.signing.oauth1 import SIGNATURE_MD5, verify_md5
from keys.db import db
from keys.models import User
from keys.store import KeyRecord, KeyStoreError, check_callback

SIGNATURE_METHODS = (SIGNATURE_HMAC_SHA1, SIGNATURE_HMAC_SHA256, SIGNATURE_MD5,
                     SIGNATURE_PLAINTEXT)
REQUIRED = ("oauth_consumer_key", "oauth_signature_method", "oauth_signature",
            "oauth_timestamp", "oauth_nonce")
OAUTH_PREFIX = "oauth_"
NONCE_SCOPE = "oauth"  # ctx.nonces scope (HMAC-SHA256's api_nonce has its own)
OOB = "oob"  # the callback of a client that shows the verifier to its user instead
TOKEN_BYTES = 16  # request and access tokens, their secrets and verifiers: 32 hex characters
TOKEN_CHARS = 2 * TOKEN_BYTES
# oauthlib checks the timestamp again with the system clock once the whole body is in; ours,
# judged when the request began to arrive, is the rule, so a slow upload is not refused there.
RECEIVE_SLACK = 3600
_DUMMY = "0" * TOKEN_CHARS  # oauthlib signs on with dummies after a miss (no early exit)
NO_VERIFIER = _DUMMY  # stands in for the verifier an OAuth 1.0 client never sends
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
REALM = "realm"  # signed in the query or body, but left out of the base string by oauthlib
RATE_LIMITED = "rate_limited"  # our oauth_problem for a 429 (the extension has no word for it)


class Refused(Exception):
    """An OAuth request refused: ``error`` for an API call's envelope, ``problem`` (the OAuth
    Problem Reporting word), ``status`` and ``extra`` for a reply of /apps/oauth/*."""

    def __init__(self, error: errors.ApiError, problem: str, status: int = 401, *,
                 retry_after: int = 0, **extra: str) -> None:
        super().__init__(problem)
        self.error, self.problem, self.status, self.extra = error, problem, status, extra
        self.retry_after = retry_after  # seconds, sent as Retry-After (a 429)

    def reply(self) -> str:
        """The form-encoded body of an /apps/oauth/* refusal."""
        return urlencode({"oauth_problem": self.problem, **self.extra})


# oauthlib's validator log → what refused, in the order that explains it best (a bad token also
# fails the signature, which was computed with a dummy secret), with the HTTP status: a rejected
# callback is a malformed request (400), the rest refusals (401).
_FAILURES = (("client", errors.ApiKeyInvalid, "consumer_key_unknown", 401),
             ("callback", errors.OAuthParametersMissing, "parameter_rejected", 400),
             ("resource_owner", errors.TokenInvalid, "token_rejected", 401),
             ("verifier", errors.TokenInvalid, "verifier_invalid", 401),
             ("signature", errors.SignatureInvalid, "signature_invalid", 401))


def _failure(request: Any) -> Refused:
    """Why oauthlib refused ``request`` (None: it could not even read it)."""
    log = request.validator_log if request is not None else {}
    for name, error, problem, status in _FAILURES:
        if log.get(name) is False:
            return Refused(error(), problem, status)
    return Refused(errors.SignatureInvalid("OAuth parameters repeated or in several places"),
                   "parameter_rejected", 400)


def callback_allowed(key: KeyRecord | None, callback: str) -> bool:
    """``oob``, or an absolute http(s) URL; a web key's must be on its registered callback's
    origin, so the browser goes nowhere the key's owner did not name."""
    if key is None:
        return False
    if callback == OOB:
        return True
    try:
        check_callback(callback)
    except KeyStoreError:
        return False
    if key.auth_type != "web":
        return True
    mine, theirs = urlsplit(key.callback_url), urlsplit(callback)
    return (mine.scheme, mine.netloc.lower()) == (theirs.scheme, theirs.netloc.lower())


@dataclass
class _State:
    """What the validator learned about one request: the token rows it looked up (None: not
    good), and whether an OAuth 1.0 client's exchange goes without a verifier (AccessTokens)."""

    rows: dict[type, Any] = field(default_factory=dict)
    without_verifier: bool = False


_STATE = "_ipernity_oauth_state"


def _state(request: Any) -> _State:
    """``request``'s _State, kept in and read from its instance dictionary: a request parameter
    of any name reaches ``getattr(request, name)``, never ``vars(request)``."""
    state: _State = vars(request).setdefault(_STATE, _State())
    return state


class Validator(RequestValidator):
    """oauthlib's storage and policy hooks over our keys, tables and nonce store."""

    # Our shapes: keys 1-32 hex (keys.store), tokens, secrets and verifiers 32 hex, nonces as
    # HMAC-SHA256's api_nonce (8-64 of A-Z a-z 0-9 _ -).
    allowed_signature_methods = SIGNATURE_METHODS
    safe_characters = frozenset(string.ascii_letters + string.digits + "_-")
    client_key_length = (1, 32)
    request_token_length = access_token_length = verifier_length = (TOKEN_CHARS, TOKEN_CHARS)
    nonce_length = (8, 64)
    enforce_ssl = False  # only PLAINTEXT needs TLS: refused over http by _check_protocol (135)
    dummy_client = "0" * 32
    dummy_request_token = dummy_access_token = _DUMMY

    def __init__(self, ctx: AppContext) -> None:
        super().__init__()
        self.ctx = ctx

    @property
    def timestamp_lifetime(self) -> int:
        """oauthlib's own bound (see RECEIVE_SLACK)."""
        return self.ctx.settings.oauth_window + RECEIVE_SLACK

    def key(self, client_key: str) -> KeyRecord | None:
        """The enabled key a consumer key names."""
        key = self.ctx.keys.lookup(client_key.strip().lower())
        return key if key is not None and key.enabled else None

    def validate_client_key(self, client_key: str, request: Any) -> bool:
        return self.key(client_key) is not None

    def get_client_secret(self, client_key: str, request: Any) -> str:
        key = self.key(client_key)
        return key.secret.reveal() if key else _DUMMY

    def validate_timestamp_and_nonce(self, client_key: str, timestamp: str, nonce: str,
                                     request: Any, request_token: str | None = None,
                                     access_token: str | None = None) -> bool:
        """Shapes only (_check_protocol, check_nonce): oauthlib asks before the signature, so the
        nonce is recorded by ``use_nonce`` once the request is found valid."""
        return True

    def use_nonce(self, key: KeyRecord, nonce: str) -> None:
        """A valid request's nonce signs once per key within twice the window (133), in every
        process."""
        store = self.ctx.nonces
        if store is not None and not store.first_use(NONCE_SCOPE, key.key, nonce,
                                                     2 * self.ctx.settings.oauth_window):
            raise Refused(errors.OAuthNonceUsed(), "nonce_used")

    def validate_redirect_uri(self, client_key: str, redirect_uri: str, request: Any) -> bool:
        return callback_allowed(self.key(client_key), redirect_uri)

    # Realms are not used: permissions are asked as perm_* on the consent page (spec §5.5).
    def get_default_realms(self, client_key: str, request: Any) -> list[str]:
        return []

    def get_realms(self, token: str, request: Any) -> list[str]:
        return []

    def validate_requested_realms(self, client_key: str, realms: list[str],
                                  request: Any) -> bool:
        return True

    def validate_realms(self, client_key: str, token: str, request: Any, uri: str | None = None,
                        realms: list[str] | None = None) -> bool:
        return True

    def save_request_token(self, token: dict[str, str], request: Any) -> None:
        """Keep the token's hash and secret until frob_ttl; expired ones are dropped here."""
        now = int(self.ctx.clock())
        with db.atomic():
            OAuthRequestToken.delete().where(OAuthRequestToken.expires_at < now).execute()
            OAuthRequestToken.create(token_hash=token_hash(token["oauth_token"]),
                                     secret=token["oauth_token_secret"],
                                     api_key=request.client_key.strip().lower(),
                                     callback=request.redirect_uri, created_at=now,
                                     expires_at=now + self.ctx.settings.frob_ttl)

    def _row(self, model: type[OAuthRequestToken] | type[Token], client_key: str, token: str,
             request: Any) -> Any:
        """The row of ``token`` if ``client_key``'s and still good (a request token approved and
        fresh, an access token live with a secret); looked up once per request, as oauthlib asks
        for it several times."""
        rows = _state(request).rows
        if model not in rows:
            row = model.get_or_none(model.token_hash == token_hash(token))
            good = row is not None and row.api_key == client_key.strip().lower() and (
                not row.revoked_at and bool(row.oauth_secret) if isinstance(row, Token)
                else row.state == "approved" and row.expires_at > self.ctx.clock())
            rows[model] = row if good else None
        return rows[model]

    def validate_request_token(self, client_key: str, token: str, request: Any) -> bool:
        return self._row(OAuthRequestToken, client_key, token, request) is not None

    def get_request_token_secret(self, client_key: str, token: str, request: Any) -> str:
        row = self._row(OAuthRequestToken, client_key, token, request)
        return row.secret if row else _DUMMY

    def validate_verifier(self, client_key: str, token: str, verifier: str,
                          request: Any) -> bool:
        """The verifier the consent page gave (stored as a hash); none at all for an OAuth 1.0
        client of a legacy_oauth key (AccessTokens)."""
        row = self._row(OAuthRequestToken, client_key, token, request)
        if row is None:
            return False
        if _state(request).without_verifier:
            key = self.key(client_key)
            return key is not None and key.legacy_oauth
        return hmac.compare_digest(row.verifier.encode(), token_hash(verifier).encode())

    def save_access_token(self, token: dict[str, str], request: Any) -> None:
        """A Token row like any other (auth.checkToken, the revocation page) with its secret; the
        request token is used up in the same transaction, so one exchange wins."""
        row = self._row(OAuthRequestToken, request.client_key, request.resource_owner_key,
                        request)
        with db.atomic():
            used = (OAuthRequestToken
                    .update(state="used")
                    .where(OAuthRequestToken.id == row.id, OAuthRequestToken.state == "approved")
                    .execute())
            if used != 1:
                raise Refused(errors.TokenInvalid("request token used meanwhile"), "token_used")
            Token.create(token_hash=token_hash(token["oauth_token"]), api_key=row.api_key,
                         user=row.user_id, created_at=int(self.ctx.clock()),
                         oauth_secret=token["oauth_token_secret"],
                         **{PERM_PREFIX + area: level for area, level in levels_of(row).items()})

    def validate_access_token(self, client_key: str, token: str, request: Any) -> bool:
        return self._row(Token, client_key, token, request) is not None

    def get_access_token_secret(self, client_key: str, token: str, request: Any) -> str:
        row = self._row(Token, client_key, token, request)
        return row.oauth_secret if row else _DUMMY


class _Md5Endpoint(BaseEndpoint):
    """oauthlib's signature check, plus the original's MD5: its endpoints dispatch on a fixed
    list of methods, with no hook on the provider's side (api.signing.oauth1)."""

    def _check_signature(self, request: Any, is_token_request: bool = False) -> bool:
        if request.signature_method != SIGNATURE_MD5:
            return bool(super()._check_signature(request, is_token_request))
        validator = self.request_validator
        client_secret = validator.get_client_secret(request.client_key, request)
        token_secret = None
        if request.resource_owner_key:
            secret_of = (validator.get_request_token_secret if is_token_request
                         else validator.get_access_token_secret)
            token_secret = secret_of(request.client_key, request.resource_owner_key, request)
        return verify_md5(request, client_secret, token_secret)


class RequestTokens(_Md5Endpoint, RequestTokenEndpoint):
    """/apps/oauth/request."""


class AccessTokens(_Md5Endpoint, AccessTokenEndpoint):
    """/apps/oauth/access; an OAuth 1.0 client of a legacy_oauth key sends no verifier."""

    def validate_access_token_request(self, request: Any) -> tuple[bool, Any]:
        if not request.verifier:  # OAuthProvider.access_token let it through: a legacy key
            request.verifier = NO_VERIFIER
            _state(request).without_verifier = True
        return super().validate_access_token_request(request)


class Resources(_Md5Endpoint, ResourceEndpoint):
    """API calls with an oauth_token."""


class SignedOnly(_Md5Endpoint, SignatureOnlyEndpoint):
    """API calls without a token (auth.getFrob, test.echo …): the consumer's signature alone."""


@dataclass(frozen=True)
class Pending:
    """A request token waiting on the consent page: its row, its key and the key's owner."""

    row: OAuthRequestToken
    key: KeyRecord
    owner: User


def _unsigned(signed: OAuthRequest) -> bool:
    """Whether the body's fields escape the signature: a multipart body's text fields are signed
    only when they carry the oauth_* parameters, as the original's clients sign them; otherwise a
    multipart body is not signed (RFC 5849 §3.4.1.3.1)."""
    return signed.multipart and not any(name.startswith(OAUTH_PREFIX) for name in signed.body)


def _inputs(signed: OAuthRequest) -> tuple[str, str, dict[str, str]]:
    """The URI, body and headers oauthlib reads. Query and body are written again from their
    decoded values (a signature covers values, not their escaping)."""
    uri = signed.url + ("?" + urlencode(list(signed.query.items())) if signed.query else "")
    headers = {"Authorization": signed.authorization} if signed.authorization else {}
    body = ""
    if signed.body and not _unsigned(signed):
        body = urlencode(list(signed.body.items()))
        headers.update(FORM)
    return uri, body, headers


def _read(signed: OAuthRequest) -> tuple[str, str, dict[str, str], dict[str, str]]:
    """_inputs and the oauth_* parameters. A ``realm`` query or body parameter is refused (146):
    oauthlib leaves it out of the base string when the Authorization header names a realm, so it
    would travel unsigned."""
    if REALM in signed.query or REALM in signed.body:
        raise Refused(errors.UnknownParameter(shown=REALM), "parameter_rejected", 400,
                      oauth_parameters_rejected=REALM)
    uri, body, headers = _inputs(signed)
    return uri, body, headers, _oauth_params(uri, body, headers)


def _check_unsigned(signed: OAuthRequest, upload: bool) -> None:
    """Multipart text fields the signature does not cover (OAuth in the header or the query)
    only on an upload, and none named as a query parameter, which they would override (140)."""
    if not (signed.body and _unsigned(signed)):
        return
    if not upload:
        raise Refused(errors.MalformedRequest(
            shown="multipart fields are not signed: send them urlencoded"),
            "parameter_rejected", 400)
    repeated = sorted(signed.body.keys() & signed.query.keys())
    if repeated:
        raise Refused(errors.MalformedRequest(
            shown="unsigned multipart field repeats a query parameter: " + ", ".join(repeated)),
            "parameter_rejected", 400)


def _oauth_params(uri: str, body: str, headers: Mapping[str, str]) -> dict[str, str]:
    """The oauth_* parameters wherever they came, read by oauthlib."""
    try:
        found = signature.collect_parameters(uri_query=urlsplit(uri).query, body=body,
                                             headers=headers, exclude_oauth_signature=False)
    except (ValueError, TypeError):
        raise Refused(errors.OAuthParametersMissing(shown="unreadable Authorization header"),
                      "parameter_absent", 400) from None
    return dict(utils.filter_oauth_params(found))


def _missing(names: list[str]) -> Refused:
    return Refused(errors.OAuthParametersMissing(shown=", ".join(names)), "parameter_absent",
                   400, oauth_parameters_absent="&".join(names))


class OAuthProvider:
    """The OAuth flow and the verification of OAuth-signed calls (ctx.oauth)."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.validator = Validator(ctx)

        def new_token() -> str:
            return ctx.new_secret(TOKEN_BYTES)

        self._request_tokens = RequestTokens(self.validator, new_token)
        self._access_tokens = AccessTokens(self.validator, new_token)
        self._resources = Resources(self.validator)
        self._signed_only = SignedOnly(self.validator)
        # oauthlib logs signature base strings (tokens in them) at DEBUG: never ours to keep.
        logging.getLogger("oauthlib").setLevel(logging.INFO)

    def _check_protocol(self, oauth: Mapping[str, str], uri: str, received_at: float | None,
                        required: tuple[str, ...] = REQUIRED) -> KeyRecord:
        """The spec's codes for protocol faults (130-135), then the consumer key (101)."""
        if oauth.get("oauth_version", "1.0") != "1.0":
            raise Refused(errors.OAuthVersion(), "version_rejected", 400)
        missing = [name for name in required if not oauth.get(name)]
        if missing:
            raise _missing(missing)
        method = oauth["oauth_signature_method"]
        if method not in SIGNATURE_METHODS or (
                method == SIGNATURE_PLAINTEXT and not uri.lower().startswith("https://")):
            raise Refused(errors.OAuthSignatureMethod(), "signature_method_rejected", 400)
        stamp, now = oauth["oauth_timestamp"], int(received_at or self.ctx.clock())
        if not (len(stamp) == 10 and stamp.isascii() and stamp.isdigit()):
            raise Refused(errors.OAuthTimestamp(), "timestamp_refused", 400)
        window = self.ctx.settings.oauth_window
        if abs(now - int(stamp)) > window:
            raise Refused(errors.OAuthClockSkew(shown=f"server time {now}"), "timestamp_refused",
                          oauth_acceptable_timestamps=f"{now - window}-{now + window}")
        if not self.validator.check_nonce(oauth["oauth_nonce"]):
            raise Refused(errors.OAuthParametersMissing(
                shown="oauth_nonce must be 8-64 of A-Z a-z 0-9 _ -"), "parameter_rejected", 400,
                oauth_parameters_rejected="oauth_nonce")
        key = self.validator.key(oauth["oauth_consumer_key"])
        if key is None:
            raise Refused(errors.ApiKeyInvalid(), "consumer_key_unknown")
        if key.require_hmac and method in (SIGNATURE_MD5, SIGNATURE_PLAINTEXT):
            raise Refused(errors.OAuthSignatureMethod("MD5 or PLAINTEXT on a require_hmac key"),
                          "signature_method_rejected", 400)
        return key

    def _limit_key(self, key: KeyRecord) -> None:
        """One call of the consumer key's budget (112): every request token is a row."""
        quotas: list[Quota] = []
        if self.ctx.limits is not None and self.ctx.limits.spend(quotas, "key", key.key,
                                                                 policy=key.rate_limit):
            raise Refused(errors.ApplicationQuota(), RATE_LIMITED, 429,
                          retry_after=ratelimit.retry_after(quotas))

    def verify_call(self, signed: OAuthRequest, params: Mapping[str, str], *,
                    upload: bool = False) -> OAuthCaller:
        """An OAuth-signed API call's key and grant (OAuthVerifier), or its ApiError; ``upload``:
        the method takes a file, so its multipart text fields may go unsigned."""
        try:
            return self._verify_call(signed, params, upload)
        except Refused as refused:
            raise refused.error from None

    def _verify_call(self, signed: OAuthRequest, params: Mapping[str, str],
                     upload: bool) -> OAuthCaller:
        uri, body, headers, oauth = _read(signed)
        key = self._check_protocol(oauth, uri, signed.received_at)
        _check_unsigned(signed, upload)
        api_key = params.get("api_key", "").strip().lower()
        if api_key and api_key != key.key:
            raise Refused(errors.ApiKeyInvalid("api_key is not oauth_consumer_key"),
                          "consumer_key_rejected")
        token, auth_token = oauth.get("oauth_token", ""), params.get("auth_token", "")
        if token and auth_token and not hmac.compare_digest(token.encode(), auth_token.encode()):
            raise Refused(errors.TokenInvalid("auth_token is not oauth_token"), "token_rejected")
        if token and not self.validator.check_access_token(token):
            raise Refused(errors.TokenInvalid(), "token_rejected")
        if token:
            valid, request = self._resources.validate_protected_resource_request(
                uri, signed.http_method, body, headers)
        else:
            valid, request = self._signed_only.validate_request(uri, signed.http_method, body,
                                                                headers)
        if not valid:
            raise _failure(request)
        self.validator.use_nonce(key, oauth["oauth_nonce"])
        # auth_token without oauth_token: a token sent beside the consumer's signature, as
        # beside an api_sig (spec §5.1); an OAuth access token is refused there (107): it is
        # used with its secret or not at all.
        grant = (self.ctx.grants.resolve(token or auth_token, key, oauth_token=bool(token))
                 if token or auth_token else None)
        return OAuthCaller(key=key, grant=grant)

    def _request(self, endpoint: BaseEndpoint, uri: str, http_method: str, body: str,
                 headers: Mapping[str, str]) -> Any:
        """oauthlib's request object, read as its create_*_response methods read it."""
        try:
            return endpoint._create_request(uri, http_method, body, headers)
        except oauth_errors.OAuth1Error:
            raise _failure(None) from None

    def request_token(self, signed: OAuthRequest) -> str:
        """/apps/oauth/request: a new request token's form-encoded reply, or Refused."""
        uri, body, headers, oauth = _read(signed)
        key = self._check_protocol(oauth, uri, signed.received_at)
        if not oauth.get("oauth_callback") and not key.legacy_oauth:
            raise _missing(["oauth_callback"])
        request = self._request(self._request_tokens, uri, signed.http_method, body, headers)
        if not request.redirect_uri:  # an OAuth 1.0 client of a legacy_oauth key names none
            request.redirect_uri = OOB
        valid, request = self._request_tokens.validate_request_token_request(request)
        if not valid:
            raise _failure(request)
        self.validator.use_nonce(key, oauth["oauth_nonce"])
        self._limit_key(key)
        return str(self._request_tokens.create_request_token(request, {}))

    def access_token(self, signed: OAuthRequest) -> str:
        """/apps/oauth/access: the access token's form-encoded reply, or Refused. Without
        oauth_verifier only for a legacy_oauth key (OAuth 1.0 clients; docs/oauth.md)."""
        uri, body, headers, oauth = _read(signed)
        key = self._check_protocol(oauth, uri, signed.received_at, (*REQUIRED, "oauth_token"))
        if not oauth.get("oauth_verifier") and not key.legacy_oauth:
            raise _missing(["oauth_verifier"])
        request = self._request(self._access_tokens, uri, signed.http_method, body, headers)
        valid, request = self._access_tokens.validate_access_token_request(request)
        if not valid:
            raise _failure(request)
        self.validator.use_nonce(key, oauth["oauth_nonce"])
        return str(self._access_tokens.create_access_token(request, {}))

    def pending(self, token: str) -> Pending:
        """The fresh, undecided request token the consent page names; FlowError otherwise."""
        row = (OAuthRequestToken.get_or_none(OAuthRequestToken.token_hash == token_hash(token))
               if token else None)
        if row is None:
            raise FlowError("This authorization link names no request token we know: start "
                            "again from the application.")
        if row.expires_at <= self.ctx.clock():
            raise FlowError("This authorization link has expired. Start again from the "
                            "application.")
        if row.state != "new":
            raise FlowError("This authorization link has already been used.")
        key = self.validator.key(row.api_key)
        owner = User.get_or_none(User.id == key.owner_id) if key else None
        if key is None or owner is None:
            raise FlowError("The application's API key is unknown or disabled.")
        return Pending(row=row, key=key, owner=owner)

    def decide(self, pending: Pending, *, allow: bool, user: User,
               permissions: Mapping[str, str]) -> str:
        """Record the member's decision, once; the verifier to hand back ("" on Deny)."""
        verifier = self.ctx.new_secret(TOKEN_BYTES) if allow else ""
        changes: dict[str, Any] = {"state": "approved" if allow else "denied", "user": user}
        if allow:
            changes["verifier"] = token_hash(verifier)
            changes.update({PERM_PREFIX + area: level for area, level in permissions.items()})
        updated = (OAuthRequestToken
                   .update(changes)
                   .where(OAuthRequestToken.id == pending.row.id,
                          OAuthRequestToken.state == "new")
                   .execute())
        if updated != 1:
            raise FlowError("This authorization link has already been used.")
        return verifier


__all__ = ["FORM", "OOB", "OAuthProvider", "Pending", "Refused", "callback_allowed"]
