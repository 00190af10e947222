"""The call pipeline: one request in, one rendered reply out. No falcon here.

Steps, in the order the spec implies (each raises the right ApiError):

 1. transport (done by the caller): method, format, parameters, files, client address
 2. format known? (102, rendered as JSON); JSONP callback valid and not on a token call? (142)
    Just before it (before the body is read, when the REST edge calls ``admit``), every request
    spends one call of its client address's rate limit: 113 once the format is known, so in that
    format (limits and headers: api.runtime.ratelimit)
 3. transport-level problem found while reading the request? (140, 141)
 4. method known? (103)
 5. key present, known and enabled? (100, 101) - ``api.methods.getList`` may go without one
 6. caller address allowed for the key? (111) Then one call of the key's rate limit (112)
 7. POST where the method requires it? (120)
 8. signature present and valid where required? (104, 105) - the key's secret, or the one it
    replaced while the rotation's grace lasts (judged by ctx.clock); MD5 api_sig, or HMAC-SHA256
    when api_sig_method says so, whose api_ts must be within API_HMAC_WINDOW of when the request
    began to arrive (144) and whose api_nonce is used once (145); a key with require_hmac takes
    nothing else; on a signed call, no parameter the method does not take (146)
 9. token present where required, valid, bound to this key, account open? (106, 107, 108)
    A call carrying OAuth parameters has 5, 8 and 9 done at once by ctx.oauth (spec §5.5:
    101, 105, 107, 108, 130-135; api.auth.oauth, docs/oauth.md)
10. permission level enough? (110)
11. parameters bound to the handler's signature (method-specific codes)
12. the handler returns a plain result tree (a method that writes runs in one transaction); the
    format renders it. A busy database (locked past the busy timeout) answers 503, not 500.
13. the call is counted in memory and written to the access log; a known key's failure goes to
    its request log (in memory, flushed later; a 105 with the signed string, secret hidden)
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from api.core import errors
from api.core.context import (
    AppContext,
    Call,
    Grant,
    OAuthCaller,
    OAuthRequest,
    Quota,
    UploadedFile,
    exceeded,
)
from api.core.permissions import level_rank
from api.core.registry import MethodSpec
from api.formats import DEFAULT_FORMAT, FORMATS, Format, Jsonp
from api.formats.json import CALLBACK_NAME
from api.signing import hmac as hmac_sig
from api.signing import md5
from keys.db import db, is_busy
from keys.store import KeyRecord

log = logging.getLogger("api.dispatch")
_NO_HEADERS: Mapping[str, str] = MappingProxyType({})  # a format's own headers, when none


# ApiRequest and Reply are not frozen: a frozen dataclass sets each field through
# object.__setattr__, which made building these two a tenth of test.hello's pipeline. Nothing
# changes them once made.
@dataclass(slots=True)
class ApiRequest:
    """A transport-neutral API request."""

    http_method: str
    method_name: str
    format_name: str
    params: Mapping[str, str]
    files: Mapping[str, UploadedFile] = field(default_factory=dict)
    client_addr: str = ""
    base_url: str = ""
    unsigned: frozenset[str] = frozenset()  # routing names that arrived as parameters (?method=)
    transport_error: errors.ApiError | None = None
    path: str = ""  # the path as the client sent it (HMAC-SHA256 signs it; transport.path_as_sent)
    # UNIX seconds when the server began to receive the request (waitress; api/server.py), which
    # judges an HMAC api_ts; None (falcon's TestClient, other servers) means ctx.clock() at dispatch
    received_at: float | None = None
    oauth: OAuthRequest | None = None  # what OAuth signed, when the request carries OAuth


@dataclass(slots=True)
class Reply:
    """A rendered answer: the API code (0 for ok) decides the HTTP status in api/app.py."""

    code: int
    content_type: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    quotas: tuple[Quota, ...] = ()  # rate-limit windows spent: the RateLimit headers (api/app.py)


class Dispatcher:
    """Runs the pipeline for one app context."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def handle(self, request: ApiRequest, address: list[Quota] | None = None) -> Reply:
        """Answer one request; never raises. ``address``: what ``admit`` spent for it, when the
        caller did so before reading the request (else it is spent here: once per call)."""
        started = time.perf_counter()
        fmt: Format = FORMATS[DEFAULT_FORMAT]
        key: KeyRecord | None = None
        spec: MethodSpec | None = None
        user_id = 0
        quotas: list[Quota] = []
        try:
            quotas.extend(self.admit(request.client_addr) if address is None else address)
            fmt = self._format(request)
            if exceeded(quotas):
                raise errors.ClientIpQuota()
            if request.transport_error is not None:
                raise request.transport_error
            spec = self._method(request)
            oauth = self._oauth(request, spec)  # steps 5, 8 and 9 at once for OAuth
            key = oauth.key if oauth else self._key(request, spec)
            self._check_address(request, key)
            self._limit_key(quotas, key)
            self._check_post(request, spec)
            if oauth is None:
                self._check_signature(request, spec, key)
            grant = oauth.grant if oauth else self._grant(request, spec, key)
            user_id = grant.user.id if grant is not None else 0
            self._check_permission(spec, grant)
            kwargs = spec.bind(request.params)
            call = Call(ctx=self.ctx, method=spec.name, key=key, grant=grant,
                        client_addr=request.client_addr, http_method=request.http_method,
                        params=request.params, files=request.files, base_url=request.base_url,
                        quotas=quotas)
            tree = self._run(spec, call, kwargs)
            body, code = fmt.render(tree), 0
        except errors.ApiError as error:
            body, code = fmt.render_error(error.code, error.message), error.code
            self._log_failure(request, spec, key, fmt, error)
        except Exception as error:
            failure: type[errors.ApiError] = errors.ServiceError
            if is_busy(error):  # retry later: nothing was written (ServiceUnavailable, HTTP 503)
                log.warning("database busy in %s: %r", spec.name if spec else "-", error)
                failure = errors.ServiceUnavailable
            else:
                # The traceback goes to the log; the client learns only that it was our fault.
                log.exception("unexpected error in %s", spec.name if spec else request.method_name)
            body, code = fmt.render_error(failure.code, failure.message), failure.code
            self._log_failure(request, spec, key, fmt, failure())
        duration_ms = (time.perf_counter() - started) * 1000.0
        self._account(request, spec, key, fmt, code, duration_ms, user_id)
        return Reply(code=code, content_type=fmt.content_type, body=body,
                     headers=getattr(fmt, "headers", _NO_HEADERS), quotas=tuple(quotas))

    # -- steps -------------------------------------------------------------------------------

    @staticmethod
    def _format(request: ApiRequest) -> Format:
        fmt = FORMATS.get(request.format_name or DEFAULT_FORMAT)
        if fmt is None:
            raise errors.InvalidFormat(request.format_name)
        callback = request.params.get("callback")
        if callback is None or fmt.name != "json":
            return fmt
        if not CALLBACK_NAME.match(callback) or "auth_token" in request.params:
            raise errors.InvalidCallback()  # rendered as plain JSON: the callback is not trusted
        return Jsonp(callback)

    def _method(self, request: ApiRequest) -> MethodSpec:
        spec = self.ctx.registry.get(request.method_name) if request.method_name else None
        if spec is None:
            raise errors.MethodNotFound(request.method_name)
        return spec

    def _key(self, request: ApiRequest, spec: MethodSpec) -> KeyRecord | None:
        api_key = request.params.get("api_key", "")
        if not api_key:
            if spec.keyless:
                return None
            raise errors.ApiKeyMissing()
        key = self._enabled_key(api_key)
        if key is None:
            raise errors.ApiKeyInvalid()
        return key

    def _enabled_key(self, api_key: str) -> KeyRecord | None:
        key = self.ctx.keys.lookup(api_key.strip().lower())
        return key if key is not None and key.enabled else None

    def key_refused(self, params: Mapping[str, str]) -> bool:
        """Whether ``params`` carry an api_key step 5 refuses (unknown or disabled): the transport
        asks before spooling a file part, so a refused caller's upload is never copied."""
        api_key = params.get("api_key", "")
        return bool(api_key) and self._enabled_key(api_key) is None

    def admit(self, client_addr: str) -> list[Quota]:
        """Step 2's call of the client address's budget (exceeded when a window says so). The
        REST edge spends it before reading the body, so an address over its budget never has an
        upload spooled (api/app.py), and hands it to ``handle``."""
        quotas: list[Quota] = []
        self._spend(quotas, "address", client_addr)
        return quotas

    @staticmethod
    def _check_address(request: ApiRequest, key: KeyRecord | None) -> None:
        # Addresses and CIDR ranges; a key that lists none allows all (asked first: every call).
        if key is not None and key.allowed_ips and not key.allows(request.client_addr):
            raise errors.IpNotAllowed()

    def _spend(self, quotas: list[Quota], scope: str, identity: str, *,
               policy: str = "") -> bool:
        """One call of a rate limit (api.runtime.ratelimit); True when it is exceeded."""
        return self.ctx.limits is not None and self.ctx.limits.spend(quotas, scope, identity,
                                                                     policy=policy)

    def _limit_key(self, quotas: list[Quota], key: KeyRecord | None) -> None:
        """After 111, so calls from addresses a key does not allow never spend its budget."""
        if key is not None and self._spend(quotas, "key", key.key, policy=key.rate_limit):
            raise errors.ApplicationQuota()

    @staticmethod
    def _run(spec: MethodSpec, call: Call, kwargs: dict[str, Any]) -> Any:
        """Step 12. A method that writes runs in one transaction, so what it read before writing
        cannot change under it and an error leaves nothing half-written; on SQLite the
        transaction is BEGIN IMMEDIATE (keys/db.py), which waits for the write lock up front."""
        if not spec.atomic:
            return spec.handler(call, **kwargs) or {}
        with db.atomic():
            return spec.handler(call, **kwargs) or {}

    @staticmethod
    def _check_post(request: ApiRequest, spec: MethodSpec) -> None:
        if spec.post and request.http_method != "POST":
            raise errors.PostRequired()

    def _check_signature(self, request: ApiRequest, spec: MethodSpec,
                         key: KeyRecord | None) -> None:
        """Step 8 (docs/signing.md). An OAuth-signed call is the OAuth provider's to verify."""
        if key is None:
            return
        sent = request.params.get(md5.SIGNATURE_PARAM)
        if hmac_sig.METHOD_PARAM in request.params:
            self._check_hmac(request, key)
        elif key.require_hmac:  # an MD5 signature, or none, from a key that takes only HMAC
            if sent:
                raise errors.SignatureInvalid("MD5 on a require_hmac key")
            raise errors.SignatureMissing()
        elif not sent:
            if spec.sign or key.always_signed or "auth_token" in request.params:
                raise errors.SignatureMissing()
            return
        else:
            signed = _signed_params(request)
            for secret in key.secrets_at(self.ctx.clock()):  # the rotated one during its grace
                if md5.verify(signed, spec.name, secret.reveal(), sent):
                    break
            else:
                raise errors.SignatureInvalid()
        _check_declared(request, spec, md5_signed=hmac_sig.METHOD_PARAM not in request.params)

    def _check_hmac(self, request: ApiRequest, key: KeyRecord) -> None:
        """HMAC-SHA256: parameters (104 missing, 105 malformed), signature (105), then the
        timestamp (144) and, only for a call the key's secret signed, the nonce (145): junk
        never fills the nonce store."""
        params = request.params
        sent, stamp, nonce = (params.get(name, "") for name in (
            hmac_sig.SIGNATURE_PARAM, hmac_sig.TIMESTAMP_PARAM, hmac_sig.NONCE_PARAM))
        if params[hmac_sig.METHOD_PARAM] != hmac_sig.HMAC_SHA256:
            raise errors.SignatureInvalid("unknown api_sig_method")
        if not (sent and stamp and nonce):
            raise errors.SignatureMissing("api_sig, api_ts or api_nonce missing")
        if not hmac_sig.TIMESTAMP.fullmatch(stamp) or not hmac_sig.NONCE.fullmatch(nonce):
            raise errors.SignatureInvalid("malformed api_ts or api_nonce")
        now = self.ctx.clock()
        if not any(hmac_sig.verify(request.http_method, request.path, params, secret.reveal(),
                                   sent) for secret in key.secrets_at(now)):
            raise errors.SignatureInvalid()
        settings = self.ctx.settings
        window = settings.hmac_window
        began = now if request.received_at is None else request.received_at
        # The longest a request may take from its first byte to dispatch: api/server.py closes
        # slower arrivals, and one that then waited longer for a thread is refused here, so no
        # call is dispatched after its nonce is forgotten (a replay trickled in slowly).
        arriving = math.ceil(settings.header_timeout + settings.body_timeout)
        shown = f"server time {int(now)}"
        if abs(int(began) - int(stamp)) > window or now - began > arriving:
            raise errors.TimestampOutOfRange(f"api_ts {stamp}", shown=shown)
        # Kept until the last moment a call with this api_ts could be dispatched: begun before
        # api_ts + window + 1, arrived within `arriving`; +1 for the store's whole seconds.
        ttl = int(stamp) + window + 1 + arriving + 1 - int(now)
        if self.ctx.nonces is not None and not self.ctx.nonces.first_use(
                NONCE_SCOPE, key.key, nonce, max(1, ttl)):
            raise errors.NonceUsed(shown=shown)

    def _oauth(self, request: ApiRequest, spec: MethodSpec) -> OAuthCaller | None:
        """Steps 5, 8 and 9 for a call that carries OAuth parameters (spec §5.5, docs/oauth.md):
        the consumer key is the API key, the signature replaces api_sig, oauth_token (or
        auth_token) the token; None for any other call."""
        if request.oauth is None or self.ctx.oauth is None:
            return None
        upload = any(param.name == "file" for param in spec.params)  # upload.file, .replace
        caller = self.ctx.oauth.verify_call(request.oauth, request.params, upload=upload)
        if spec.token and caller.grant is None:
            raise errors.TokenMissing()
        return caller

    def _grant(self, request: ApiRequest, spec: MethodSpec, key: KeyRecord | None) -> Grant | None:
        token = request.params.get("auth_token", "")
        if not token:
            if spec.token:
                raise errors.TokenMissing()
            return None
        if key is None:  # a keyless call cannot prove the token is its own
            raise errors.ApiKeyMissing()
        return self.ctx.grants.resolve(token, key)

    @staticmethod
    def _check_permission(spec: MethodSpec, grant: Grant | None) -> None:
        # Methods with token=0 that name a permission only widen what a token holder sees (§5.1).
        if not spec.token or grant is None:
            return
        needed = spec.required_level
        if needed is None:
            return
        area, level = needed
        if level_rank(grant.level(area)) < level_rank(level):
            raise errors.InsufficientPermissions()

    def _log_failure(self, request: ApiRequest, spec: MethodSpec | None, key: KeyRecord | None,
                     fmt: Any, error: errors.ApiError) -> None:
        """A known key's failed call goes to its request log (in memory; flushed later). For a
        105 the log keeps the string the server signed, secret and token hidden (debug_string),
        and the api_sig the client sent: wrong by definition, so it signs nothing."""
        if key is None or self.ctx.request_log is None:
            return
        signed = sent = ""
        if error.code == errors.SignatureInvalid.code and spec is not None and not request.oauth:
            signed = debug_string(request, spec.name)
            sent = request.params.get(md5.SIGNATURE_PARAM, "")
        self.ctx.request_log.record(key.key, spec.name if spec else request.method_name[:64],
                                    error.code, error.message, request.client_addr, fmt.name,
                                    signed=signed, api_sig=sent)

    def _account(self, request: ApiRequest, spec: MethodSpec | None, key: KeyRecord | None,
                 fmt: Any, code: int, duration_ms: float, user_id: int = 0) -> None:
        method = spec.name if spec else "-"
        api_key = key.key if key else ""
        self.ctx.usage.record(api_key, method, code, duration_ms, user_id)
        if self.ctx.access_log is not None:
            # Never a secret, signature or token: only names and the key (a public id).
            self.ctx.access_log.write(request.client_addr, api_key, method, fmt.name, code,
                                      duration_ms)


SECRET_SHOWN = "<secret>"
TOKEN_SHOWN_CHARS = 4
NONCE_SCOPE = "hmac"  # ctx.nonces scope of api_nonce (OAuth keeps its own)
# What a signed call may send beside the method's own parameters (146 otherwise): the protocol's
# (oauth_* too) and lg, which clients add to every call (spec §10.5); on MD5, of a strict shape.
PROTOCOL_PARAMS = frozenset({"api_key", md5.SIGNATURE_PARAM, "auth_token", "method", "format",
                             "callback", hmac_sig.METHOD_PARAM, hmac_sig.TIMESTAMP_PARAM,
                             hmac_sig.NONCE_PARAM, "lg"})
OAUTH_PREFIX = "oauth_"
# What an MD5-signed call's parameters that nothing reads must look like, so that the tail of a
# value split off into one must be a whole token of that shape (docs/signing.md): a language
# code (spec §10.5: "fr", "en", "de", "pt-BR"), and the local path of an upload's text ``file``
# field beside its file part (ipernity-api 0.13 sends it: something with a slash or a backslash,
# or a file name with an extension).
LANGUAGE = re.compile(r"(?:[a-z]{2}(?:[-_][a-z]{2,4})?)?", re.IGNORECASE)  # "", fr, EN, zh-Hant
LOCAL_PATH = re.compile(r".*[/\\].*|[^/\\]+\.[A-Za-z0-9]{1,10}", re.DOTALL)
HMAC_ONLY = (hmac_sig.TIMESTAMP_PARAM, hmac_sig.NONCE_PARAM)  # on an MD5 call, nothing reads them


def _check_declared(request: ApiRequest, spec: MethodSpec, *, md5_signed: bool) -> None:
    """146 for a parameter the method does not take: MD5 concatenates names and values, so a
    signed ``title="Sunset over the zoo"`` also signs ``title="Sunset over the "`` + ``zoo=""``,
    and an ignored ``zoo`` let a captured call change the title. The same for an allowed
    parameter nothing reads, unless it has its strict shape: ``method`` and ``format`` sent as
    parameters must name what the path routed (signed calls); on MD5 calls, ``lg`` must be a
    language code, ``callback`` comes only with JSON (where step 2 checks it), ``api_ts`` and
    ``api_nonce`` not at all, and an upload's text ``file`` must look like a local path."""
    params = request.params
    declared = spec.declared
    others = params.keys() - declared - PROTOCOL_PARAMS  # set arithmetic: every signed call asks
    for name in sorted(others):
        if not name.startswith(OAUTH_PREFIX):
            raise errors.UnknownParameter(f"undeclared {name!r}", shown=name[:40])
    fmt = request.format_name or DEFAULT_FORMAT
    for name, routed in (("method", request.method_name), ("format", fmt)):
        if (name in params and name not in declared and name not in request.unsigned
                and params[name].casefold() != routed.casefold()):
            raise errors.UnknownParameter(f"{name} is not the routed one", shown=name)
    if not md5_signed:
        return  # HMAC signs names and values apart: nothing can be split off
    unread = [name for name in HMAC_ONLY if name in params]
    if "lg" in params and "lg" not in declared and not LANGUAGE.fullmatch(params["lg"]):
        unread.append("lg")
    if "callback" in params and fmt != "json":
        unread.append("callback")
    if "file" in request.files and not LOCAL_PATH.fullmatch(params.get("file", "/")):
        unread.append("file")
    if unread:
        raise errors.UnknownParameter(f"{unread[0]} is unread and not of its shape",
                                      shown=unread[0])


def _signed_params(request: ApiRequest) -> Mapping[str, str] | list[tuple[str, str]]:
    """The parameters a signature covers (routing names sent as parameters are not)."""
    if not request.unsigned:
        return request.params
    return [pair for pair in request.params.items() if pair[0] not in request.unsigned]


def shown_token(value: str) -> str:
    """An auth_token as logs and pages show it: its first characters only."""
    return value[:TOKEN_SHOWN_CHARS] + "…" if len(value) > TOKEN_SHOWN_CHARS else value


def debug_string(request: ApiRequest, method: str) -> str:
    """The string the server signs for ``request`` (md5.signature_base_string, spec §4, with
    ``<secret>`` for the secret; hmac.base_string for HMAC-SHA256, which holds no secret) with the
    auth_token cut to its first characters: enough to see where a client's string differs, never
    enough to sign a call."""
    hmac_signed = hmac_sig.METHOD_PARAM in request.params
    params = request.params if hmac_signed else _signed_params(request)
    pairs = params.items() if isinstance(params, Mapping) else params
    shown = [(name, shown_token(value) if name == "auth_token" else value) for name, value in pairs]
    if hmac_signed:
        return hmac_sig.base_string(request.http_method, request.path, shown)
    return md5.signature_base_string(shown, method, SECRET_SHOWN)
