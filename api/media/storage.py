"""Where media files live: a small ``Storage`` interface, the local-directory backend, and the one
place (``build_storage``) that picks a backend from the settings.

Storage names are the media paths without their ``/media/`` prefix
(``26/49/394926.<secret>.75x.jpg``, see api/media/names.py); a backend refuses names that could
leave its root.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Protocol

from api.config import Settings

# Media, spooled and queued files are the server user's alone, whatever the umask: originals of
# private documents among them (the media route reads them in-process).
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
# Slash-separated parts of letters, digits, dots, dashes and underscores; no part starts with a dot.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*")


class Storage(Protocol):
    """A flat store of immutable files addressed by storage name."""

    def put(self, name: str, source: BinaryIO) -> None:
        """Store the bytes read from ``source`` under ``name`` (replacing any earlier file)."""
        ...

    def open(self, name: str) -> BinaryIO:
        """A binary stream of the file; raises FileNotFoundError when there is none."""
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
                shutil.copyfileobj(source, out, 1 << 20)
            os.replace(temp, target)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def open(self, name: str) -> BinaryIO:
        """The file opened for reading."""
        return self._path(name).open("rb")

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


# The one table of backends; another one (S3 …) is a new entry here and a Settings value.
BACKENDS: dict[str, Callable[[Settings], Storage]] = {
    "local": lambda settings: LocalStorage(Path(settings.data_dir) / "media"),
}


def build_storage(settings: Settings) -> Storage:
    """The storage backend ``settings.storage`` names."""
    try:
        return BACKENDS[settings.storage](settings)
    except KeyError:
        raise ValueError(f"unknown storage backend {settings.storage!r}") from None
