"""The files holding every API secret are the server user's alone (issue 10): the data directory
is created 0700, the SQLite file and its -wal/-shm 0600; what an older version left open is
narrowed (the database) or reported (a directory someone may share on purpose)."""

from __future__ import annotations

import io
import logging
import os
import stat
import tempfile

from keys.db import db, open_database, private_directory


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_data_directory_and_database_are_private(tmp_path):
    old = os.umask(0o022)  # the usual umask, which made them 0755 and 0644
    data = tmp_path / "new" / "data"
    private_directory(data)
    assert mode(data) == 0o700
    path = data / "api.sqlite3"
    database = open_database(f"sqlite:///{path}")
    try:
        database.execute_sql("CREATE TABLE t (x INTEGER)")
        database.execute_sql("INSERT INTO t VALUES (1)")
        assert {name: mode(data / name) for name in os.listdir(data)} == {
            "api.sqlite3": 0o600, "api.sqlite3-wal": 0o600, "api.sqlite3-shm": 0o600}
    finally:
        database.close()
        db.initialize(None)
        os.umask(old)


def test_an_old_world_readable_database_is_narrowed_and_logged(tmp_path, caplog):
    path = tmp_path / "api.sqlite3"
    path.write_bytes(b"")
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="keys.db"):
        open_database(f"sqlite:///{path}").close()
    db.initialize(None)
    assert mode(path) == 0o600
    assert "now 0600" in caplog.text


def test_an_existing_open_directory_is_left_alone_but_reported(tmp_path, caplog):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    with caplog.at_level(logging.WARNING, logger="keys.db"):
        private_directory(shared)
    assert mode(shared) == 0o755
    assert "chmod 700" in caplog.text


def test_media_spool_and_incoming_files_are_private_whatever_the_umask(ctx, owner, tmp_path):
    """Originals of private documents were 0644 in 0755 directories (0666 under umask 000)."""
    from api.core.context import UploadedFile
    from api.media.storage import LocalStorage

    old = os.umask(0)
    try:
        media = tmp_path / "m" / "media"
        LocalStorage(media).put("26/49/1.secret.jpg", io.BytesIO(b"x"))
        assert (mode(media), mode(media / "26/49/1.secret.jpg")) == (0o700, 0o600)
        spool = ctx.uploads.own_spool()
        assert mode(spool) == 0o700
        handle, path = tempfile.mkstemp(dir=spool)
        os.close(handle)
        ticket = ctx.uploads.enqueue(user=owner, api_key="k", options={}, upload=UploadedFile(
            filename="x.jpg", path=path, size=0, content_type=""))
        incoming = ctx.uploads.incoming
        assert mode(incoming.root) == 0o700 and mode(incoming.path(ticket.file_path)) == 0o600
    finally:
        os.umask(old)
