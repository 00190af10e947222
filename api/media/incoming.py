"""Uploads waiting for a worker: the file each upload ticket names (``UploadTicket.file_path``).

Where they wait follows the media storage, so that whichever process claims a ticket can read
its file (docs/uploads.md, "Shared files"): ``data_dir/incoming`` with local storage (a data dir
every process shares), the bucket's ``<s3_prefix>incoming/`` with S3 (no shared disk at all; the
worker copies the file into its own spool while it processes it).

A ticket names its file as ``incoming/<24 hex digits>``, relative to the data dir or the bucket
prefix, never by a path only one host can open. Rows written before hold the path as it was then
(absolute, or relative to the working directory), which ``LocalIncoming`` still opens.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path, PurePosixPath
from typing import Protocol

from api.config import Settings
from api.media.storage import CHUNK, PRIVATE_DIR, PRIVATE_FILE, S3Storage, s3_storage

FOLDER = "incoming"
# Seconds between two listings of the bucket's incoming/ prefix for the orphan sweep (a listing
# of a whole prefix is a request per 1000 objects; the sweep is a backstop, nothing waits on it).
S3_SWEEP_SECONDS = 300.0


class Incoming(Protocol):
    """Where uploads wait, addressed by the reference their ticket stores."""

    def keep(self, path: str) -> str:
        """Take the spooled file at ``path`` over; the reference to store in the ticket."""
        ...

    def local(self, ref: str, workdir: Path) -> AbstractContextManager[Path]:
        """A local file with the upload's bytes while the block runs (made in ``workdir`` if it
        has to be fetched); FileNotFoundError when the upload is gone."""
        ...

    def remove(self, ref: str) -> None:
        """Remove the upload; a missing one is fine."""
        ...

    def listing(self) -> list[tuple[float, str]]:
        """(modification time, reference) of every waiting upload, for the orphan sweep; an
        empty list when a listing is costly and one was made lately."""
        ...

    def aliases(self, ref: str) -> list[str]:
        """Every ``file_path`` a ticket may hold for ``ref`` (rows from before included)."""
        ...


def _new_ref() -> str:
    return f"{FOLDER}/{secrets.token_hex(12)}"


class LocalIncoming:
    """Uploads in ``data_dir/incoming``; keeping one is a rename from the spool beside it."""

    def __init__(self, data_dir: str) -> None:
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / FOLDER

    def path(self, ref: str) -> Path:
        """The file of ``ref``: ``incoming/<name>`` lies in the data dir, any other value is a
        path stored before references were (used as it was)."""
        parts = PurePosixPath(ref).parts
        return self.data_dir / ref if len(parts) == 2 and parts[0] == FOLDER else Path(ref)

    def keep(self, path: str) -> str:
        """Move the spooled file into ``incoming``."""
        self.root.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        ref = _new_ref()
        shutil.move(path, self.path(ref))
        return ref

    @contextmanager
    def local(self, ref: str, workdir: Path) -> Iterator[Path]:
        """The file where it waits."""
        yield self.path(ref)

    def remove(self, ref: str) -> None:
        """Unlink the file."""
        self.path(ref).unlink(missing_ok=True)

    def listing(self) -> list[tuple[float, str]]:
        """The files of ``incoming`` with their modification times (a file gone meanwhile is
        left out)."""
        if not self.root.is_dir():
            return []
        found = []
        for path in self.root.iterdir():
            try:
                found.append((path.stat().st_mtime, f"{FOLDER}/{path.name}"))
            except FileNotFoundError:
                continue
        return found

    def aliases(self, ref: str) -> list[str]:
        """The reference, and the path tickets stored for the same file before references."""
        return list(dict.fromkeys([ref, str(self.data_dir / ref)]))


class ObjectIncoming:
    """Uploads as objects under ``<s3_prefix>incoming/``: any host's worker can fetch them."""

    def __init__(self, store: S3Storage) -> None:
        self.store = store
        self._listed_at = -S3_SWEEP_SECONDS  # time.monotonic() of the last listing

    def keep(self, path: str) -> str:
        """Upload the spooled file (the transport removes it after the request)."""
        ref = _new_ref()
        with open(path, "rb") as source:
            self.store.put(_name(ref), source)
        return ref

    @contextmanager
    def local(self, ref: str, workdir: Path) -> Iterator[Path]:
        """A copy in ``workdir`` (the process's spool), streamed down and removed afterwards."""
        copy = workdir / f".{FOLDER}-{secrets.token_hex(8)}"
        try:
            body, _ = self.store.fetch(_name(ref))
            try:
                with os.fdopen(os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                                       PRIVATE_FILE), "wb") as out:
                    shutil.copyfileobj(body, out, CHUNK)
            finally:
                body.close()
            yield copy
        finally:
            copy.unlink(missing_ok=True)

    def remove(self, ref: str) -> None:
        """Delete the object."""
        self.store.delete(_name(ref))

    def listing(self) -> list[tuple[float, str]]:
        """The objects under the prefix with their modification times; nothing if the last
        listing is less than ``S3_SWEEP_SECONDS`` old (the worker checks every poll interval)."""
        if time.monotonic() - self._listed_at < S3_SWEEP_SECONDS:
            return []
        self._listed_at = time.monotonic()
        return [(modified, f"{FOLDER}/{name}") for modified, name in self.store.listing()]

    def aliases(self, ref: str) -> list[str]:
        """Only the reference: tickets stored nothing else for objects."""
        return [ref]


def _name(ref: str) -> str:
    """The object's storage name under the incoming prefix."""
    return ref.removeprefix(f"{FOLDER}/")


def build_incoming(settings: Settings) -> Incoming:
    """Where uploads wait, following ``settings.storage``."""
    if settings.storage == "s3":
        return ObjectIncoming(s3_storage(settings, FOLDER))
    return LocalIncoming(settings.data_dir)
