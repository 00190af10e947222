"""Settings: the one frozen configuration object, read from the environment and the command line."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from keys.db import default_database_url
from keys.secret import Secret


@dataclass(frozen=True)
class Settings:
    """Everything the server can be told; one field per knob, each with its environment variable."""

    # Interface to listen on (API_HOST).
    host: str = "127.0.0.1"
    # TCP port to listen on (API_PORT).
    port: int = 8080
    # Directory for the SQLite file and stored media (API_DATA_DIR).
    data_dir: str = "data"
    # Database URL, sqlite:///path or postgresql://...; empty means a SQLite file in data_dir
    # (API_DATABASE_URL).
    database_url: str = ""
    # Bring the schema to the latest version at start (API_AUTO_MIGRATE, serve.py --no-migrate);
    # off, a start on an older schema is refused: run `python -m api migrate` first.
    auto_migrate: bool = True
    # waitress worker threads (API_THREADS).
    threads: int = 8
    # Largest request body accepted, in bytes; uploads included (API_MAX_BODY_BYTES).
    max_body_bytes: int = 110 * 1024 * 1024
    # Largest urlencoded body, and the most the multipart parts besides `file` may hold together,
    # in bytes; 141 beyond (API_MAX_FORM_BYTES). Only the `file` part may use max_body_bytes.
    max_form_bytes: int = 1024 * 1024
    # Connections waitress keeps open at once; later ones wait in the listen backlog
    # (API_CONNECTION_LIMIT; the process raises its open-files limit to fit).
    connection_limit: int = 1000
    # Seconds a connection may stay silent (an idle keep-alive, a stalled request) before it is
    # closed (API_CHANNEL_TIMEOUT).
    channel_timeout: int = 60
    # Seconds from a request's first byte to the end of its headers (API_HEADER_TIMEOUT), and to
    # the end of its body (API_BODY_TIMEOUT: 100 MiB at 512 kbit/s fits); a body must also average
    # API_MIN_BODY_RATE bytes a second since its first byte, judged once API_BODY_RATE_WINDOW
    # seconds have passed. A slower request is answered 408 and its connection closed
    # (docs/protocol-choices.md, "Bounded resources").
    header_timeout: float = 10.0
    body_timeout: float = 3600.0
    min_body_rate: float = 2048.0
    body_rate_window: float = 15.0
    # Seconds a connection may stay open with no request, from its accept or its last answer
    # (API_IDLE_TIMEOUT).
    idle_timeout: float = 15.0
    # Seconds a key lookup stays cached; changes made in this process invalidate at once
    # (API_KEY_CACHE_TTL).
    key_cache_ttl: float = 10.0
    # Seconds between flushes of the in-memory usage counters (API_USAGE_FLUSH_SECONDS).
    usage_flush_seconds: float = 5.0
    # Days usage counters, latency histograms and member days are kept; older ones are dropped
    # every hour; 0 keeps them forever (API_USAGE_RETENTION_DAYS).
    usage_retention_days: int = 400
    # Failed calls kept per key in the request log, oldest dropped (API_REQUEST_LOG_BOUND).
    request_log_bound: int = 1000
    # Seconds a frob stays valid before it is exchanged (API_FROB_TTL).
    frob_ttl: int = 600
    # Public base URL used in links we hand out (media URLs); empty means derived from the request
    # (API_PUBLIC_URL).
    public_url: str = ""
    # Write one access-log line per call (API_ACCESS_LOG).
    access_log: bool = True
    # Secure flag on cookies; "auto" means when the request came over https (API_SECURE_COOKIES).
    secure_cookies: str = "auto"
    # Where media files live: "local" (a directory under data_dir/media) or "s3" (an S3-compatible
    # bucket: media under <s3_prefix>media/, uploads waiting for a worker under
    # <s3_prefix>incoming/; docs/uploads.md "Shared files") (API_STORAGE).
    storage: str = "local"
    # The bucket (API_S3_BUCKET); the endpoint, empty for AWS itself (API_S3_ENDPOINT_URL); the
    # region, empty for boto3's default (API_S3_REGION); "path", "virtual" or "auto" addressing
    # (API_S3_ADDRESSING_STYLE); a prefix for every key, e.g. "ipernity/" (API_S3_PREFIX).
    s3_bucket: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = ""
    s3_addressing_style: str = "auto"
    s3_prefix: str = ""
    # Credentials; an empty access key leaves them to boto3's chain (AWS_* variables, an instance
    # role) (API_S3_ACCESS_KEY, API_S3_SECRET_KEY).
    s3_access_key: str = ""
    s3_secret_key: Secret = field(default=Secret(""), repr=False)
    # Seconds to connect (API_S3_CONNECT_TIMEOUT) and to wait for each read (API_S3_TIMEOUT),
    # and attempts per request, the first included (API_S3_MAX_ATTEMPTS), before the store counts
    # as unavailable; then calls fail at once for a while (docs/uploads.md "Object storage").
    s3_connect_timeout: float = 2.0
    s3_timeout: float = 5.0
    s3_max_attempts: int = 2
    # Largest accepted file per media type, in bytes (API_MAX_PHOTO_BYTES, …); max_body_bytes still
    # caps every request (spec §6.5 maxfilesize).
    max_photo_bytes: int = 100 * 1024 * 1024
    max_video_bytes: int = 100 * 1024 * 1024
    max_audio_bytes: int = 100 * 1024 * 1024
    max_other_bytes: int = 100 * 1024 * 1024
    # Largest picture a member may upload as their icon on /settings/profile, in bytes
    # (API_MAX_ICON_BYTES); the pixel and decoding limits below apply to it too.
    max_icon_bytes: int = 10 * 1024 * 1024
    # Largest image accepted, in pixels; bigger ones are refused as decompression bombs
    # (API_MAX_IMAGE_PIXELS).
    max_image_pixels: int = 120_000_000
    # Memory one image's decoding may take, in bytes: decoded pixels × bytes per pixel of its mode
    # (and the RGB copy of a palette image); larger ones are refused like bombs
    # (API_MAX_DECODE_BYTES).
    max_decode_bytes: int = 512 * 1024 * 1024
    # Longest video or audio accepted, in seconds, as its container declares it and as decoded
    # (API_MAX_MEDIA_SECONDS; longer: code 3, or a failed ticket).
    max_media_seconds: int = 3600
    # Largest video frame accepted, in pixels (API_MAX_VIDEO_PIXELS; 4096 × 4096).
    max_video_pixels: int = 4096 * 4096
    # Largest decoded video frame accepted, in bytes: pixels × bytes per pixel of the format the
    # stream declares (API_MAX_VIDEO_FRAME_BYTES; 4096 × 4096 8-bit 4:4:4 fits, 16-bit RGBA not).
    max_video_frame_bytes: int = 64 * 1024 * 1024
    # Seconds one upload's transcoding may take; beyond, its ticket fails. A source whose
    # estimated transcoding (its ticket's eta) is longer is refused at upload, code 3: about 20
    # minutes of 1080p, 40 of 720p (API_TRANSCODE_SECONDS).
    transcode_seconds: int = 1800
    # Added to the transcoding thread's nice value while it transcodes, so the calls keep their
    # latency on a busy machine (API_TRANSCODE_NICE; 0 leaves it).
    transcode_nice: int = 10
    # Threads the video codec uses per transcode, one transcode at a time per process
    # (API_VIDEO_THREADS; 1 leaves a core of a 2-core host to the calls).
    video_threads: int = 1
    # Bytes a non-PRO member may upload per calendar month (UTC); PRO members are not held to it
    # (API_MONTHLY_UPLOAD_BYTES, spec §6.5).
    monthly_upload_bytes: int = 10 * 1024 * 1024 * 1024
    # Video seconds per month shown by account.getQuota (API_MONTHLY_VIDEO_SECONDS).
    monthly_video_seconds: int = 7200
    # Albums a member may create, shown by account.getQuota (API_MAX_ALBUMS).
    max_albums: int = 2048
    # Seconds upload.file with async=0 waits for its ticket before answering
    # (API_UPLOAD_WAIT_SECONDS).
    upload_wait_seconds: float = 30.0
    # async=0 uploads that may wait at once; later ones answer with their ticket at once, as
    # async=1 does, so request threads stay free (API_MAX_SYNC_UPLOAD_WAITS).
    max_sync_upload_waits: int = 4
    # Seconds the upload worker sleeps when the queue is empty (API_UPLOAD_POLL_SECONDS).
    upload_poll_seconds: float = 2.0
    # Seconds a worker's claim on a ticket lasts unless renewed; a `working` ticket whose lease ran
    # out (its worker died or lost the database) is queued again (API_UPLOAD_LEASE_SECONDS).
    upload_lease_seconds: int = 120
    # Age in seconds after which a file in data_dir/incoming that no queued or working ticket
    # names is removed; never younger, so a file a request just moved there is safe
    # (API_UPLOAD_ORPHAN_SECONDS).
    upload_orphan_seconds: int = 3600
    # Claims of one upload ticket, at most: the next is refused and the ticket marked failed ("too
    # many attempts"), so a file that kills its worker or outlasts every lease is not retried for
    # ever (API_UPLOAD_MAX_ATTEMPTS, docs/uploads.md "Leases and recovery").
    upload_max_attempts: int = 3
    # Run the upload worker in this process (API_UPLOAD_WORKER); off, the process still accepts
    # uploads (queued tickets) but never claims one, not even for an async=0 wait: another
    # process's worker does (README, "Running several processes").
    upload_worker: bool = True
    # Secret used to sign session cookies and CSRF tokens; empty means one is generated and kept in
    # data_dir (API_SESSION_SECRET).
    session_secret: Secret = field(default=Secret(""), repr=False)
    # Seconds an HMAC-SHA256 call's api_ts may differ from the server's clock (when the request
    # began to arrive); its nonce is kept twice as long (API_HMAC_WINDOW, docs/signing.md).
    hmac_window: int = 300
    # Seconds an OAuth call's oauth_timestamp may differ from the server's clock (132 beyond);
    # its oauth_nonce is kept twice as long (API_OAUTH_WINDOW, docs/oauth.md).
    oauth_window: int = 300
    # Redis URL (redis://host:6379/0) for the state processes share: rate-limit budgets and used
    # nonces; empty keeps limits in this process's memory and nonces in the database
    # (API_REDIS_URL).
    redis_url: str = ""
    # Rate limits in the limits library's notation, every window holding ("50/second;50000/hour");
    # "" switches one off (docs/protocol-choices.md, "Rate limits"). Per API key, unless the key
    # has its own (API_RATELIMIT_PER_KEY); per client address, every API call
    # (API_RATELIMIT_PER_ADDRESS); per client address, auth.getFrob (API_RATELIMIT_FROBS), sign-up
    # and login form posts (API_RATELIMIT_SIGNUP, API_RATELIMIT_LOGIN).
    ratelimit_per_key: str = "50/second;50000/hour"
    ratelimit_per_address: str = "50/second;20000/hour"
    ratelimit_frobs: str = "30/minute;300/hour"
    ratelimit_signup: str = "10/minute;100/day"
    ratelimit_login: str = "30/minute;300/hour"
    # Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed: comma-separated
    # addresses or CIDR ranges; empty trusts none and reads neither header (API_TRUSTED_PROXIES,
    # docs/protocol-choices.md "Several processes").
    trusted_proxies: str = ""
    # Prefix of every Redis key (rate-limit counters under <prefix>:ratelimit, used nonces under
    # <prefix>:nonce), so deployments can share one Redis (API_REDIS_PREFIX).
    redis_prefix: str = "ipernity"
    # Log lines: "text" (one access line per API call, as before) or "json" (one JSON object per
    # line for every HTTP request, API calls, pages and media alike, each with a request id taken
    # from a sane X-Request-Id or generated and sent back in X-Request-Id; the application's log
    # records as JSON too) (API_LOG_FORMAT, docs/operations.md "Logs").
    log_format: str = "text"
    # Serve Prometheus metrics at /metrics (API_METRICS); off, /metrics answers 404.
    metrics: bool = True
    # When set, /metrics answers only requests carrying `Authorization: Bearer <this>` (401
    # otherwise); empty, it answers whoever reaches the process: restrict it at the proxy
    # (API_METRICS_TOKEN, docs/operations.md "Metrics").
    metrics_token: Secret = field(default=Secret(""), repr=False)
    # Directory the processes of one host share for prometheus_client's multiprocess mode: each
    # process writes its values there and /metrics of any of them sums them all; empty it at each
    # deploy start, before the processes start. Empty: PROMETHEUS_MULTIPROC_DIR if set, else each
    # process reports only itself (API_METRICS_DIR).
    metrics_dir: str = ""
    # Seconds /readyz waits for its database and Redis probes, each (API_READY_TIMEOUT).
    ready_timeout: float = 2.0
    # Upload backlog /readyz accepts: queued tickets (API_READY_MAX_QUEUED) and seconds the oldest
    # queued ticket has waited (API_READY_MAX_QUEUE_AGE); beyond either, 503. 0: no bound.
    ready_max_queued: int = 1000
    ready_max_queue_age: float = 900.0
    # Whether Redis (when API_REDIS_URL is set) decides readiness; off, /readyz still reports it
    # but answers 200 without it: the API runs on without Redis but for HMAC nonces
    # (API_READY_REDIS, docs/operations.md "Health").
    ready_redis: bool = True

    @property
    def resolved_database_url(self) -> str:
        """The database URL to connect to, defaulting to a SQLite file under data_dir."""
        return default_database_url(self.data_dir, self.database_url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from API_* environment variables, then apply non-None overrides."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get("API_" + f.name.upper())
            if raw is not None:
                try:
                    values[f.name] = _convert(f.type, raw)
                except ValueError:  # numbers only: a Secret is never converted
                    raise ValueError(f"API_{f.name.upper()}: not a number: {raw!r}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed (tests and the CLI use it)."""
        return replace(self, **changes)


def _convert(type_name: Any, raw: str) -> Any:
    """Turn an environment string into the field's type (annotations are strings here)."""
    kind = str(type_name)
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    if kind == "bool":
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if kind == "Secret":
        return Secret(raw)
    return raw
