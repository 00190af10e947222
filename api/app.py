"""create_app(settings): the falcon application, its routes, middleware and HTTP status policy."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import falcon

from api.config import Settings
from api.core.addresses import TrustedProxies
from api.core.context import AppContext, exceeded
from api.core.dispatch import Dispatcher, Reply
from api.core.envelopes import SOAP, XMLRPC, Envelope, read_envelope
from api.core.errors import RETRY_AFTER_SECONDS
from api.core.transport import HttpRequest, WsgiRequest, discard_files, read_request
from api.formats import soap
from api.media.names import DEFAULT_ICON_PATH, ICON_ROUTE
from api.media.route import IconResource, MediaResource
from api.media.worker import build_uploads
from api.methods import build_registry
from api.runtime import ratelimit
from api.runtime.access_log import AccessLog
from api.runtime.health import HealthResource, Readiness, ReadyResource, check_ready_timeout
from api.runtime.http_log import (
    REQUEST_ID_HEADER,
    SERVER_ERROR_JSON,
    JsonAccessLog,
    RequestLogMiddleware,
    UnhandledErrors,
    check_log_format,
    log_unhandled,
    withheld,
)
from api.runtime.latency import UsagePruner
from api.runtime.metrics import Metrics, MetricsResource
from api.runtime.request_log import RequestLog
from api.runtime.schema import create_schema
from api.runtime.usage import UsageRecorder
from api.web import help as help_pages
from api.web import home, static
from api.web.console import add_routes as add_console_routes
from api.web.explorer import add_routes as add_explorer_routes
from api.web.groups import add_routes as add_group_routes
from api.web.key_log import add_routes as add_key_log_routes
from api.web.oauth import add_routes as add_oauth_routes
from api.web.pages import add_routes as add_page_routes
from api.web.posts import add_routes as add_post_routes
from api.web.profiles import add_routes as add_profile_routes
from api.web.stats import add_routes as add_stats_routes
from keys.changes import KeyWatch
from keys.db import db, open_database, private_directory
from keys.notices import Notices
from keys.store import KeyCache

# API errors travel with HTTP 200, as on the original (spec §2.7); only our own failures and an
# exceeded rate limit (429 with Retry-After, docs/protocol-choices.md "Rate limits") do not.
_HTTP_STATUS = {112: 429, 113: 429, 500: 500, 501: 503, 503: 503}


def open_schema(settings: Settings, *, migrate: bool = True) -> int:
    """Open the database (the data dir made private first) and migrate its schema to the latest
    version, or (``migrate`` False) only check that it is there; the version."""
    private_directory(Path(settings.data_dir))
    open_database(settings.resolved_database_url, max_connections=settings.threads + 4)
    return create_schema(migrate=migrate)


def build_context(settings: Settings, *, clock=None, grants=None) -> AppContext:
    """Open the database, make sure the schema is current, and assemble the collaborators.
    ``clock`` None is the real time (the upload queue's leases then follow the database's clock);
    tests inject a fake one."""
    from api.auth.nonces import build_nonces
    from api.auth.oauth import OAuthProvider
    from api.auth.tokens import DatabaseGrants

    check_log_format(settings.log_format)
    check_ready_timeout(settings.ready_timeout)
    open_schema(settings, migrate=settings.auto_migrate)
    uploads_clock, clock = clock, clock or time.time
    access_log = None
    if settings.access_log:  # API calls in text; every HTTP request in JSON (api.runtime.http_log)
        access_log = (JsonAccessLog if settings.log_format == "json" else AccessLog)(clock=clock)
    usage = UsageRecorder(clock, settings.usage_flush_seconds)
    request_log = RequestLog(clock, settings.request_log_bound, settings.usage_flush_seconds)
    pruner = UsagePruner(clock, settings.usage_retention_days)
    notices = Notices()  # one LISTEN connection per process (PostgreSQL)
    uploads = build_uploads(settings, clock=uploads_clock, notices=notices)
    keys = KeyCache(settings.key_cache_ttl)
    metrics = Metrics(settings, usage, keys, clock=clock) if settings.metrics else None
    if metrics is not None:
        uploads.on_thumbnails = metrics.observe_thumbnails
    ctx = AppContext(settings=settings, registry=build_registry(), keys=keys,
                     grants=grants or DatabaseGrants(clock=clock),
                     usage=usage, storage=uploads.storage, uploads=uploads,
                     access_log=access_log, request_log=request_log, clock=clock,
                     nonces=build_nonces(settings.redis_url, clock,
                                         redis_prefix=settings.redis_prefix),
                     limits=ratelimit.build_limiter(settings), metrics=metrics,
                     background=[*([metrics] if metrics else []), usage, request_log,
                                 *([access_log] if access_log else []), uploads, pruner,
                                 KeyWatch(keys.invalidate, notices), notices])
    ctx.oauth = OAuthProvider(ctx)  # OAuth-signed calls (spec §5.5)
    return ctx


class DatabaseMiddleware:
    """Give back the request's connection (if it opened one) when the response is done."""

    def process_response(self, req, resp, resource, req_succeeded) -> None:
        if not db.is_closed():
            db.close()


class ApiResource:
    """``/api``, ``/api/<method>`` and ``/api/<method>/<format>``, GET and POST alike."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.dispatcher = Dispatcher(ctx)

    def reply(self, req: HttpRequest, method: str | None, fmt: str | None) -> Reply:
        """The call ``req`` makes of ``method`` (None: named by a parameter), answered."""
        settings = self.ctx.settings
        # The address's budget first: one over it has no file part spooled (113 in its format).
        address = self.dispatcher.admit(req.remote_addr or "")
        over = exceeded(address)
        # File parts wait in this process's spool (its own: another process's start-up leaves it
        # alone), beside the upload queue's files, so keeping one is a rename.
        request = read_request(req, method, fmt, settings.max_body_bytes,
                               spool_dir=self._spool_dir,
                               public_url=settings.public_url.rstrip("/"),
                               max_form=settings.max_form_bytes,
                               key_refused=_refuse_all if over else self.dispatcher.key_refused)
        try:
            return self.dispatcher.handle(request, address)
        finally:
            discard_files(request.files)

    def on_get(self, req: falcon.Request, resp: falcon.Response, method: str | None = None,
               fmt: str | None = None) -> None:
        """Only when the falcon app is called without ApiFront before it (ApiFront answers
        every GET and POST of these routes itself; falcon, the other HTTP methods)."""
        write_reply(resp, self.reply(req, method, fmt))

    on_post = on_get

    def _spool_dir(self) -> str:
        return str(self.ctx.uploads.own_spool())


class EnvelopeResource:
    """``/api/xmlrpc`` and ``/api/soap`` (with an answer format: ``/api/soap/json``): an envelope
    POSTed (spec §2.5-2.6; api/core/envelopes.py) through the same pipeline; ``/api/soap?wsdl``
    describes SOAP's one operation for toolkits."""

    def __init__(self, ctx: AppContext, envelope: Envelope) -> None:
        self.ctx = ctx
        self.envelope = envelope
        self.dispatcher = Dispatcher(ctx)

    def on_post(self, req: falcon.Request, resp: falcon.Response, fmt: str | None = None) -> None:
        settings = self.ctx.settings
        address = self.dispatcher.admit(req.remote_addr or "")  # before the body, as for REST
        request = read_envelope(req, self.envelope, fmt, max_bytes=settings.max_form_bytes,
                                report_unexpected=self.report_unexpected,
                                public_url=settings.public_url.rstrip("/"),
                                skip=exceeded(address))
        write_reply(resp, self.dispatcher.handle(request, address))

    def report_unexpected(self, error: Exception) -> None:
        """An exception the envelope's parser did not expect (answered as the transport's own
        error, not a 500): its class and frames in the errors log, never its message."""
        logging.getLogger("api.errors").error(
            "unexpected %s reading a %s envelope", type(error).__name__,
            self.envelope.format_name, exc_info=withheld(error))

    def on_get(self, req: falcon.Request, resp: falcon.Response, fmt: str | None = None) -> None:
        if self.envelope is SOAP and fmt is None and "wsdl" in req.params:
            base = self.ctx.settings.public_url.rstrip("/") or f"{req.scheme}://{req.netloc}"
            resp.content_type, resp.data = soap.WSDL_CONTENT_TYPE, soap.wsdl(base)
        else:  # no envelope: the transport's own error, in its format
            self.on_post(req, resp, fmt)


def _refuse_all(params: Mapping[str, str]) -> bool:
    """read_request's early check for an address over its budget: never spool its file part."""
    return True


def write_reply(resp: falcon.Response, reply: Reply) -> None:
    """Put a Reply in a falcon response."""
    resp.status, headers = reply_head(reply)
    resp.set_headers(headers)
    resp.data = reply.body


def reply_head(reply: Reply) -> tuple[int, list[tuple[str, str]]]:
    """A Reply's HTTP status and headers; the only place that maps API codes to statuses."""
    status = _HTTP_STATUS.get(reply.code, 200)
    now = time.time()  # one moment for both, so Retry-After is never below the headers' t
    headers = ratelimit.headers(reply.quotas, now=now)
    if status == 503:
        headers.append(("Retry-After", str(RETRY_AFTER_SECONDS)))
    elif status == 429:
        headers.append(("Retry-After", str(ratelimit.retry_after(reply.quotas, now=now))))
    headers.append(("Content-Type", reply.content_type))
    headers.extend(reply.headers.items())
    return status, headers


class ApiFront:
    """The WSGI application: each GET or POST of a REST API route (``/api``, ``/api/<method>``,
    ``/api/<method>/<format>``) goes straight to the pipeline; everything else - pages, media,
    envelopes, operations, other HTTP methods - to the falcon app. An API call needs none of
    falcon's request and response objects, routing or middleware, which cost a ``test.hello``
    more than the rest of its pipeline (bench/instructions_bench.py); what the middleware does
    for every request is done here too: the request id and JSON access line, the client behind
    a trusted proxy, the database connection given back, a 500 without a traceback."""

    def __init__(self, app: falcon.App, api: ApiResource, proxies: TrustedProxies,
                 request_log: RequestLogMiddleware | None) -> None:
        self.app = app
        self.api = api
        self.proxies = proxies
        self.request_log = request_log

    def __call__(self, env: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        http_method: str = env.get("REQUEST_METHOD", "")
        route = api_route(env.get("PATH_INFO") or "/") if http_method in _API_METHODS else None
        if route is None:
            return self.app(env, start_response)
        method, fmt, template = route
        request_id = (self.request_log.begin(env.get("HTTP_X_REQUEST_ID"))
                      if self.request_log is not None else None)
        try:
            self.proxies.rewrite(env)
            status, headers = reply_head(reply := self.api.reply(WsgiRequest(env), method, fmt))
            body = reply.body
        except Exception as error:  # what the pipeline does not answer itself (a disk error…)
            log_unhandled(error, http_method, template)
            status, body = 500, SERVER_ERROR_JSON
            headers = [("Cache-Control", "no-store"), ("Content-Type", falcon.MEDIA_JSON)]
        finally:
            if not db.is_closed():
                db.close()
        headers.append(("Content-Length", str(len(body))))
        if request_id is not None:
            headers.append((REQUEST_ID_HEADER, request_id))
        start_response(_STATUS_LINES[status], headers)
        if self.request_log is not None:
            self.request_log.end(env.get("REMOTE_ADDR", "127.0.0.1"), http_method, template,
                                 status, len(body))
        return [body]


_API_METHODS = frozenset({"GET", "POST"})
_STATUS_LINES = {status: falcon.code_to_http_status(status) for status in (200, 429, 500, 503)}
_ENVELOPES = frozenset(envelope.format_name for envelope in (XMLRPC, SOAP))


def api_route(path: str) -> tuple[str | None, str | None, str] | None:
    """(method, format, route template) when ``path`` is a REST API route as falcon would route
    it (one trailing slash ignored; no empty segment; ``/api/xmlrpc`` and ``/api/soap`` are the
    envelopes'); None otherwise."""
    if not path.startswith("/api"):
        return None
    if path.endswith("/") and len(path) > 1:
        path = path[:-1]
    if path == "/api":
        return None, None, "/api"
    if path[4] != "/":
        return None
    parts = path[5:].split("/")
    if "" in parts or len(parts) > 2 or parts[0] in _ENVELOPES:
        return None
    if len(parts) == 1:
        return parts[0], None, "/api/{method}"
    return parts[0], parts[1], "/api/{method}/{fmt}"


def create_app(settings: Settings, *, ctx: AppContext | None = None) -> ApiFront:
    """The WSGI application for ``settings`` (a context is built unless one is given)."""
    ctx = ctx or build_context(settings)
    # The client behind a trusted proxy first: everything after reads req.remote_addr/scheme.
    proxies = TrustedProxies(settings.trusted_proxies)
    middleware: list[Any] = [proxies, DatabaseMiddleware()]
    request_log = None
    if settings.log_format == "json":  # request ids, one line per request (its response last)
        json_log = ctx.access_log if isinstance(ctx.access_log, JsonAccessLog) else None
        request_log = RequestLogMiddleware(json_log)
        middleware.insert(0, request_log)
    app = falcon.App(middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = True
    resource = ApiResource(ctx)
    app.add_route("/api", resource)
    app.add_route("/api/{method}", resource)
    app.add_route("/api/{method}/{fmt}", resource)
    for envelope in (XMLRPC, SOAP):  # literal segments: falcon routes them before /api/{method}
        transport = EnvelopeResource(ctx, envelope)
        app.add_route(f"/api/{envelope.format_name}", transport)
        app.add_route(f"/api/{envelope.format_name}/{{fmt}}", transport)
    app.add_route("/media/{d2}/{d1}/{name}", MediaResource(ctx))
    icons = IconResource(ctx)
    app.add_route(DEFAULT_ICON_PATH, icons)
    app.add_route(ICON_ROUTE, icons)  # members' own icons
    app.add_route("/healthz", HealthResource())  # docs/operations.md
    app.add_route("/readyz", ReadyResource(Readiness(settings, clock=ctx.clock)))
    if ctx.metrics is not None:
        app.add_route("/metrics", MetricsResource(ctx.metrics))
    pages = add_page_routes(app, ctx)
    for module in (static, home, help_pages):  # the layout's stylesheet, /, /help/api…
        module.add_routes(app, pages)
    add_console_routes(app, pages)  # /apps/keys, /admin/keys
    add_stats_routes(app, pages)  # /apps/keys/<api_key>/stats(.json, .csv)
    add_key_log_routes(app, pages)  # /apps/keys/<api_key>/log
    add_explorer_routes(app, pages)  # /help/api/method/<name>/explore
    add_oauth_routes(app, pages)  # /apps/oauth/request, /authorize, /access
    add_profile_routes(app, pages)  # /home/<alias>, /settings/profile, contact forms
    add_post_routes(app, pages)  # /blog/<alias>[/<post_id>], /posts/new, /posts/<id>/…
    add_group_routes(app, pages)  # /groups, /groups/new, /group/<id>, /group/<id>/moderate
    # Exceptions no responder caught: a 500 and a record through `logging` without the path or
    # query string (falcon's default wrote both, a media secret included, to wsgi.errors).
    app.add_error_handler(Exception, UnhandledErrors(
        lambda resp, status, message: pages.render(resp, "message.html", status=status,
                                                   title="Sorry", message=message, user=None)))
    return ApiFront(app, resource, proxies, request_log)
