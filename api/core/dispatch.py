"""The call pipeline: one request in, one rendered reply out. No falcon here.

Steps, in the order the spec implies (each raises the right ApiError):

 1. transport (done by the caller): method, format, parameters, files, client address
 2. format known? (102, rendered as JSON); JSONP callback valid and not on a token call? (142)
 3. transport-level problem found while reading the request? (140, 141)
 4. method known? (103)
 5. key present, known and enabled? (100, 101) - ``api.methods.getList`` may go without one
 6. caller address allowed for the key? (111)
 7. POST where the method requires it? (120)
 8. signature present and valid where required? (104, 105) - the key's secret, or the one it
    replaced while the rotation's grace lasts (judged by ctx.clock)
 9. token present where required, valid, bound to this key, account open? (106, 107, 108)
10. permission level enough? (110)
11. parameters bound to the handler's signature (method-specific codes)
12. the handler returns a plain result tree (a method that writes runs in one transaction); the
    format renders it. A busy database (locked past the busy timeout) answers 503, not 500.
13. the call is counted in memory and written to the access log; a known key's failure goes to
    its request log (in memory, flushed later; a 105 with the signed string, secret hidden)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from api.core import errors
from api.core.context import AppContext, Call, Grant, UploadedFile
from api.core.permissions import level_rank
from api.core.registry import MethodSpec
from api.formats import DEFAULT_FORMAT, FORMATS, Format, Jsonp
from api.formats.json import CALLBACK_NAME
from api.signing import md5
from keys.db import db, is_busy
from keys.store import KeyRecord

log = logging.getLogger("api.dispatch")


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class Reply:
    """A rendered answer: the API code (0 for ok) decides the HTTP status in api/app.py."""

    code: int
    content_type: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


class Dispatcher:
    """Runs the pipeline for one app context."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def handle(self, request: ApiRequest) -> Reply:
        """Answer one request; never raises."""
        started = time.perf_counter()
        fmt: Format = FORMATS[DEFAULT_FORMAT]
        key: KeyRecord | None = None
        spec: MethodSpec | None = None
        user_id = 0
        try:
            fmt = self._format(request)
            if request.transport_error is not None:
                raise request.transport_error
            spec = self._method(request)
            key = self._key(request, spec)
            self._check_address(request, key)
            self._check_post(request, spec)
            self._check_signature(request, spec, key)
            grant = self._grant(request, spec, key)
            user_id = grant.user.id if grant is not None else 0
            self._check_permission(spec, grant)
            kwargs = spec.bind(request.params)
            call = Call(ctx=self.ctx, method=spec.name, key=key, grant=grant,
                        client_addr=request.client_addr, http_method=request.http_method,
                        params=request.params, files=request.files, base_url=request.base_url)
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
                     headers=getattr(fmt, "headers", {}))

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
        key = self.ctx.keys.lookup(api_key.strip().lower())
        if key is None or not key.enabled:
            raise errors.ApiKeyInvalid()
        return key

    @staticmethod
    def _check_address(request: ApiRequest, key: KeyRecord | None) -> None:
        if key is not None and not key.allows(request.client_addr):  # addresses, CIDR ranges
            raise errors.IpNotAllowed()

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
        if key is None:
            return
        required = spec.sign or key.always_signed or "auth_token" in request.params
        sent = request.params.get(md5.SIGNATURE_PARAM)
        if not sent:
            if required:
                raise errors.SignatureMissing()
            return
        signed = _signed_params(request)
        if not any(md5.verify(signed, spec.name, secret.reveal(), sent)
                   for secret in key.secrets_at(self.ctx.clock())):
            raise errors.SignatureInvalid()

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
        needed = spec.required_level
        if not spec.token or needed is None or grant is None:
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
        if error.code == errors.SignatureInvalid.code and spec is not None:
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


def _signed_params(request: ApiRequest) -> Mapping[str, str] | list[tuple[str, str]]:
    """The parameters a signature covers (routing names sent as parameters are not)."""
    if not request.unsigned:
        return request.params
    return [pair for pair in request.params.items() if pair[0] not in request.unsigned]


def shown_token(value: str) -> str:
    """An auth_token as logs and pages show it: its first characters only."""
    return value[:TOKEN_SHOWN_CHARS] + "…" if len(value) > TOKEN_SHOWN_CHARS else value


def debug_string(request: ApiRequest, method: str) -> str:
    """The string the server signs for ``request`` (md5.signature_base_string, spec §4) with
    ``<secret>`` for the secret and the auth_token cut to its first characters: enough to see
    where a client's string differs, never enough to sign a call."""
    params = _signed_params(request)
    pairs = params.items() if isinstance(params, Mapping) else params
    shown = [(name, shown_token(value) if name == "auth_token" else value) for name, value in pairs]
    return md5.signature_base_string(shown, method, SECRET_SHOWN)
