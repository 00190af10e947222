"""Where media files live: a small ``Storage`` interface, the local-directory backend, the
S3-compatible object-storage backend (boto3, the ``[s3]`` extra), and the one place
(``build_storage``) that picks a backend from the settings.

Storage names are the media paths without their ``/media/`` prefix
(``26/49/394926.<secret>.75x.jpg``, see api/media/names.py); a backend refuses names that could
leave its root. A store that cannot be reached raises ``StorageUnavailable``: the upload worker
queues its ticket again later, the media route answers 503 (docs/uploads.md, "Object storage").
Storage names hold a doc's media secret (a capability): messages and logs name the doc and the
label instead (``shown``).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from api.config import Settings
from api.media.names import is_thumbnail, shown

# Media, spooled and queued files are the server user's alone, whatever the umask: originals of
# private documents among them (the media route reads them in-process).
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
# Slash-separated parts of letters, digits, dots, dashes and underscores; no part starts with a dot.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*")
CHUNK = 1 << 20  # bytes copied or streamed at a time
_PART = 8 << 20  # bytes of one part of a multipart upload; two parts in flight at most
MEDIA = "media"  # the folder (data_dir/media) or key prefix (<prefix>media/) of media files
_NOT_FOUND = frozenset({"NoSuchKey", "NotFound", "404"})
# After a timeout or a failed connection, calls fail at once for this long (this process's
# threads do not each wait out the timeouts of a store that does not answer); then one tries.
BREAKER_SECONDS = 10.0
# Timeouts or failed connections in a row that open it: one slow answer alone must not refuse
# every upload of this process for BREAKER_SECONDS (uploads are POSTs nginx never retries).
BREAKER_FAILURES = 2


class StorageUnavailable(OSError):
    """The store cannot be reached or answers with a failure of its own (not the file's fault).

    An ``EIO`` OSError, so the upload worker treats it as it treats a failing disk: the ticket is
    queued again with a back-off, never marked failed."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.EIO, message)


class Storage(Protocol):
    """A flat store of immutable files addressed by storage name."""

    def put(self, name: str, source: BinaryIO) -> None:
        """Store the bytes read from ``source`` under ``name`` (replacing any earlier file)."""
        ...

    def fetch(self, name: str) -> tuple[BinaryIO, int]:
        """A binary stream of the file and its length; FileNotFoundError when there is none."""
        ...

    def fetch_range(self, name: str, start: int | None, end: int | None) -> tuple[BinaryIO, int]:
        """A stream of just the bytes ``Range: bytes=<start>-<end>`` names (``byte_span``), and
        the file's whole length; FileNotFoundError when there is none, RangeNotSatisfiable when
        none of its bytes is in the range."""
        ...

    def size(self, name: str) -> int:
        """The file's length in bytes; raises FileNotFoundError when there is none."""
        ...

    def exists(self, name: str) -> bool:
        """Whether a file is stored under ``name``."""
        ...

    def delete(self, name: str) -> None:
        """Remove the file, and what a write of it cut short left; a missing file is fine."""
        ...


class RangeNotSatisfiable(ValueError):
    """No byte of the file is in the range asked for. ``size`` is the file's length (the media
    route's ``Content-Range: bytes */<size>``), None when the store did not say it."""

    def __init__(self, size: int | None) -> None:
        super().__init__(f"range not satisfiable (a file of {size} bytes)")
        self.size = size


def byte_span(start: int | None, end: int | None, size: int) -> tuple[int, int]:
    """The first and last offsets (inclusive) that ``bytes=<start>-<end>`` names in a file of
    ``size`` bytes (RFC 9110 §14.1.2): no start, the last ``end`` bytes; no end or one beyond the
    file, up to its last byte. RangeNotSatisfiable when none of the file's bytes is in it."""
    if start is None:
        if not end or not size:
            raise RangeNotSatisfiable(size)
        return max(0, size - end), size - 1
    if start >= size:
        raise RangeNotSatisfiable(size)
    return start, size - 1 if end is None else min(end, size - 1)


def range_header(start: int | None, end: int | None) -> str:
    """The ``Range`` value of ``bytes=<start>-<end>`` (either may be left out)."""
    return f"bytes={'' if start is None else start}-{'' if end is None else end}"


def check_name(name: str) -> str:
    """The name itself if it is a safe storage name, else ValueError (no traversal, no root)."""
    if not _SAFE_NAME.fullmatch(name):
        raise ValueError("unsafe storage name")
    return name


class LocalStorage:
    """Files in a directory tree; writes go through a temporary file so readers never see half.

    The temporary file's name follows from the file's (``.<name>.part`` beside it), so removing a
    name also removes what a write cut short by a crash left of it.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, name: str) -> Path:
        return self.root / check_name(name)

    @staticmethod
    def _partial(target: Path) -> Path:
        return target.with_name(f".{target.name}.part")

    def put(self, name: str, source: BinaryIO) -> None:
        """Copy ``source`` into place atomically."""
        target = self._path(name)
        self.root.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        target.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        temp = self._partial(target)
        try:
            with os.fdopen(os.open(temp, _CREATE, PRIVATE_FILE), "wb") as out:
                shutil.copyfileobj(source, out, CHUNK)
            os.replace(temp, target)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def fetch(self, name: str) -> tuple[BinaryIO, int]:
        """The file opened for reading, and its length."""
        stream = self._path(name).open("rb")
        return stream, os.fstat(stream.fileno()).st_size

    def fetch_range(self, name: str, start: int | None, end: int | None) -> tuple[BinaryIO, int]:
        """The file opened at the range's first byte, read no further than its last."""
        stream, size = self.fetch(name)
        try:
            first, last = byte_span(start, end, size)
            stream.seek(first)
        except BaseException:
            stream.close()
            raise
        return FilePart(stream, last - first + 1), size  # type: ignore[return-value]

    def size(self, name: str) -> int:
        """The file's length."""
        return self._path(name).stat().st_size

    def exists(self, name: str) -> bool:
        """Whether the file is there."""
        return self._path(name).is_file()

    def delete(self, name: str) -> None:
        """Remove the file if present, and any write of it a crash cut short."""
        target = self._path(name)
        target.unlink(missing_ok=True)
        self._partial(target).unlink(missing_ok=True)


class FilePart:
    """At most ``length`` bytes of an open file from its position on. Like ObjectBody, neither
    seekable nor told its position: the WSGI server reads it block by block and never past the
    range (a ranged answer reads its range, not the file)."""

    def __init__(self, stream: BinaryIO, length: int) -> None:
        self._stream = stream
        self._left = length

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes of what is left of the range (all of it when negative)."""
        wanted = self._left if size < 0 else min(size, self._left)
        data = self._stream.read(wanted) if wanted > 0 else b""
        self._left -= len(data)
        return data

    def close(self) -> None:
        """Close the file."""
        self._stream.close()


class ObjectBody:
    """An object's bytes as the media route streams them: ``read`` in chunks, then ``close``.

    Neither seekable nor told its position, so the WSGI server reads it block by block instead of
    asking for its size (botocore's body is an IOBase whose ``seek`` fails)."""

    def __init__(self, body: Any, mapped: Callable[[str], Any]) -> None:
        self._body = body
        self._mapped = mapped

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (everything left when negative); StorageUnavailable when the
        connection fails in the middle."""
        with self._mapped("a read"):
            return bytes(self._body.read(None if size < 0 else size))

    def close(self) -> None:
        """Give the connection back."""
        self._body.close()


class S3Storage:
    """Objects in an S3-compatible bucket, each under ``prefix`` + its storage name.

    A PUT is atomic (a reader sees the old object or the new one, never half), so no temporary
    name is needed; what a crash leaves of a multipart upload is an unfinished upload of the same
    key, which ``delete`` aborts, as LocalStorage's removes ``.<name>.part``. Uploads read the
    source a part at a time (``_PART``, two in flight), downloads a chunk at a time: memory stays
    bounded whatever the file's size.

    A store that does not answer holds no thread for long: after ``BREAKER_FAILURES`` timeouts
    or failed connections in a row every call fails at once for ``BREAKER_SECONDS`` (a circuit
    breaker, this process's own), and ``fetch`` lets at most ``max_fetches`` threads wait for an
    object at once (beyond, StorageUnavailable at once; None: no cap).
    """

    def __init__(self, client: Any, bucket: str, prefix: str = "", *,
                 max_fetches: int | None = None) -> None:
        from boto3.s3.transfer import TransferConfig

        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self._transfer = TransferConfig(multipart_threshold=_PART, multipart_chunksize=_PART,
                                        max_concurrency=2)
        self._fetches = threading.BoundedSemaphore(max_fetches) if max_fetches else None
        self._closed_at = 0.0  # time.monotonic() from which calls are tried again
        self._failures = 0  # timeouts and failed connections in a row

    def _key(self, name: str) -> str:
        return self.prefix + check_name(name)

    @contextmanager
    def _mapped(self, what: str) -> Iterator[None]:
        """``_mapped``, behind the circuit breaker: refused at once while it is open, opened by
        a timeout or a failed connection."""
        from botocore import exceptions

        if time.monotonic() < self._closed_at:
            raise StorageUnavailable(f"object storage unreachable ({what}): not tried again "
                                     f"for up to {BREAKER_SECONDS:g} s")
        try:
            with _mapped(what):
                yield
        except StorageUnavailable as error:
            if isinstance(error.__cause__,
                          exceptions.ConnectionError | exceptions.HTTPClientError):
                self._failures += 1
                if self._failures >= BREAKER_FAILURES:
                    self._closed_at = time.monotonic() + BREAKER_SECONDS
            raise
        self._failures = 0

    def put(self, name: str, source: BinaryIO) -> None:
        """Upload ``source`` in parts (a single PUT when it is small)."""
        with self._mapped(shown(name)):
            self.client.upload_fileobj(source, self.bucket, self._key(name),
                                       Config=self._transfer)

    def fetch(self, name: str) -> tuple[BinaryIO, int]:
        """A streaming body of the object and its length (one GET, no HEAD before it)."""
        answer = self._get(name)
        body = ObjectBody(answer["Body"], self._mapped)
        return body, int(answer["ContentLength"])  # type: ignore[return-value]

    def fetch_range(self, name: str, start: int | None, end: int | None) -> tuple[BinaryIO, int]:
        """One GET with the ``Range`` parameter: the store sends just those bytes, and their
        ``ContentRange`` the object's length (a HEAD only when it refuses a range without
        saying the length)."""
        try:
            answer = self._get(name, Range=range_header(start, end))
        except RangeNotSatisfiable as error:
            raise RangeNotSatisfiable(
                self.size(name) if error.size is None else error.size) from None
        body = ObjectBody(answer["Body"], self._mapped)
        length = str(answer.get("ContentRange", "")).rpartition("/")[2]
        if not length.isdigit():  # the whole object came back: the store ignores ranges
            body.close()
            raise StorageUnavailable(f"object storage ignored a range ({shown(name)})")
        return body, int(length)  # type: ignore[return-value]

    def _get(self, name: str, **extra: str) -> Any:
        """GetObject's answer, with at most ``max_fetches`` threads waiting for one at once."""
        if self._fetches is not None and not self._fetches.acquire(blocking=False):
            raise StorageUnavailable(f"object storage busy ({shown(name)}): too many reads "
                                     f"waiting")
        try:
            with self._mapped(shown(name)):
                answer = self.client.get_object(Bucket=self.bucket, Key=self._key(name),
                                                **extra)
        finally:
            if self._fetches is not None:
                self._fetches.release()
        return answer

    def size(self, name: str) -> int:
        """The object's length (a HEAD request)."""
        with self._mapped(shown(name)):
            answer = self.client.head_object(Bucket=self.bucket, Key=self._key(name))
        return int(answer["ContentLength"])

    def exists(self, name: str) -> bool:
        """Whether the object is there."""
        try:
            self.size(name)
        except FileNotFoundError:
            return False
        return True

    def delete(self, name: str) -> None:
        """Remove the object, and abort any upload of it a crash cut short; a missing one is
        fine (S3 answers a DELETE of a missing key with success). Only an original or a waiting
        upload can be big enough to go up in parts: a thumbnail's delete is one request."""
        key = self._key(name)
        with self._mapped(shown(name)):
            self.client.delete_object(Bucket=self.bucket, Key=key)
            if is_thumbnail(name):
                return
            pending = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=key)
            for upload in pending.get("Uploads", []):
                if upload["Key"] == key:
                    self.client.abort_multipart_upload(Bucket=self.bucket, Key=key,
                                                       UploadId=upload["UploadId"])

    def listing(self) -> list[tuple[float, str]]:
        """(modification time, storage name) of every object under the prefix."""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                       Prefix=self.prefix)
        with self._mapped("a listing"):
            return [(entry["LastModified"].timestamp(), entry["Key"][len(self.prefix):])
                    for page in pages for entry in page.get("Contents", [])]


@contextmanager
def _mapped(what: str) -> Iterator[None]:
    """Turn botocore's failures into the interface's: a missing object into FileNotFoundError,
    anything else (unreachable, timed out, refused, a 5xx) into StorageUnavailable. The message
    says ``what`` was asked (``shown``: a doc and label, never a storage name, which holds the
    doc's secret) and the error's code, never a credential."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in _NOT_FOUND:
            raise FileNotFoundError(errno.ENOENT, "no such object", what) from None
        if code == "InvalidRange":  # AWS says the length, not every S3-compatible store does
            size = str(error.response.get("Error", {}).get("ActualObjectSize", ""))
            raise RangeNotSatisfiable(int(size) if size.isdigit() else None) from None
        raise StorageUnavailable(f"object storage refused {what}: {code}") from error
    except BotoCoreError as error:
        raise StorageUnavailable(
            f"object storage unreachable ({what}): {type(error).__name__}") from error


def s3_storage(settings: Settings, folder: str, *, max_fetches: int | None = None) -> S3Storage:
    """The bucket ``settings`` name, under ``<s3_prefix><folder>/``; connections with bounded
    timeouts and attempts, credentials from the settings or else boto3's own chain."""
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=settings.s3_connect_timeout,
                    read_timeout=settings.s3_timeout,
                    retries={"max_attempts": settings.s3_max_attempts, "mode": "standard"},
                    s3={"addressing_style": settings.s3_addressing_style})
    credentials = ({"aws_access_key_id": settings.s3_access_key,
                    "aws_secret_access_key": settings.s3_secret_key.reveal()}
                   if settings.s3_access_key else {})
    client = boto3.session.Session().client(
        "s3", endpoint_url=settings.s3_endpoint_url or None,
        region_name=settings.s3_region or None, config=config, **credentials)
    return S3Storage(client, settings.s3_bucket, f"{settings.s3_prefix}{folder}/",
                     max_fetches=max_fetches)


# The one table of backends; another one is a new entry here and a Settings value.
BACKENDS: dict[str, Callable[[Settings], Storage]] = {
    "local": lambda settings: LocalStorage(Path(settings.data_dir) / MEDIA),
    # The media route's reads: at most half the request threads wait on the bucket at once.
    "s3": lambda settings: s3_storage(settings, MEDIA, max_fetches=max(1, settings.threads // 2)),
}


def build_storage(settings: Settings) -> Storage:
    """The storage backend ``settings.storage`` names."""
    try:
        return BACKENDS[settings.storage](settings)
    except KeyError:
        raise ValueError(f"unknown storage backend {settings.storage!r}") from None
