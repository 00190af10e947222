"""API_STORAGE=s3 against a real S3-compatible server started here (moto's server mode, over HTTP
on a free port; no mock object): PyIpernity uploads end to end with media served from the bucket,
uploads waiting in the bucket (any host's worker can claim them), doc.delete and upload.replace
removing objects, crash recovery removing the names it recorded, and a stopped store queuing
tickets again (never failing them) while the media route answers 503. On SQLite and PostgreSQL
alike (TEST_DATABASE_URL)."""

from __future__ import annotations

import hashlib
import io
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from ipernity import IpernityAPI
from moto.server import ThreadedMotoServer

from api.app import build_context
from api.media import storage
from api.media.names import original_url, thumb_url
from api.media.queue import DONE, QUEUED, WORKING
from api.media.storage import S3Storage, StorageUnavailable
from api.models.docs import Doc, UploadTicket
from keys.secret import Secret
from tests.conftest import free_port
from tests.upload.avfiles import write_video
from tests.upload.conftest import camera_exif, doc_files, jpeg
from tests.upload.test_leases import Killed, WatchedStorage, killed_at_put

SECRET_KEY = "s3-secret-never-logged"


class S3Server:
    """moto's S3 server in a thread on a fixed port, stoppable and startable again (its buckets
    live in this process, so they survive a restart)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: ThreadedMotoServer | None = None

    def start(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server._server.server_close()  # free the port at once: a restart binds it again
            self.server = None


@pytest.fixture
def s3_server() -> Iterator[S3Server]:
    server = S3Server()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings(settings, s3_server):
    """The shared settings with media and waiting uploads in a fresh bucket of the server."""
    bucket = f"media-{secrets.token_hex(6)}"
    client(s3_server.url).create_bucket(Bucket=bucket)
    return settings.with_(storage="s3", s3_endpoint_url=s3_server.url, s3_bucket=bucket,
                          s3_region="us-east-1", s3_access_key="test-access",
                          s3_secret_key=Secret(SECRET_KEY), s3_prefix="site/",
                          s3_addressing_style="path", s3_timeout=2.0, s3_max_attempts=1)


def client(url: str) -> Any:
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="test-access", aws_secret_access_key=SECRET_KEY,
                        config=Config(retries={"max_attempts": 1}, connect_timeout=2))


def objects(settings: Any, folder: str) -> set[str]:
    """The names of the objects under ``<prefix><folder>/``."""
    prefix = f"{settings.s3_prefix}{folder}/"
    pages = client(settings.s3_endpoint_url).get_paginator("list_objects_v2").paginate(
        Bucket=settings.s3_bucket, Prefix=prefix)
    return {entry["Key"][len(prefix):] for page in pages for entry in page.get("Contents", [])}


def local_files(settings: Any) -> list[Path]:
    """Files in the data dir's media and incoming folders (none with S3)."""
    data = Path(settings.data_dir)
    return [p for folder in ("media", "incoming") for p in (data / folder).rglob("*")]


def test_pyipernity_uploads_are_stored_and_served_from_the_bucket(live_server, queue, api_key,
                                                                   token, settings, tmp_path):
    path = tmp_path / "holiday.jpg"
    path.write_bytes(jpeg(1200, 900, exif=camera_exif()))
    api = IpernityAPI(api_key.key, api_key.secret, token=token,
                      url=live_server.base_url + "/api/")
    queue.start()
    doc_id = api.upload_file(str(path), title="Holiday")

    doc = Doc.get_by_id(int(doc_id))
    assert doc.md5 == hashlib.md5(path.read_bytes()).hexdigest()
    assert objects(settings, "media") == doc_files() != set()
    assert objects(settings, "incoming") == set()  # the upload is removed once done
    assert local_files(settings) == []
    original = requests.get(original_url(live_server.base_url, doc), timeout=10)
    assert original.status_code == 200 and original.content == path.read_bytes()
    assert original.headers["content-length"] == str(path.stat().st_size)
    got = api.doc.get(doc_id=doc_id)["doc"]
    for thumb in got["thumbs"]["thumb"]:
        served = requests.get(thumb["url"], timeout=10)
        stored = client(settings.s3_endpoint_url).get_object(
            Bucket=settings.s3_bucket,
            Key="site/media/" + thumb["url"].split("/media/", 1)[1])["Body"].read()
        assert served.status_code == 200 and served.content == stored
        assert served.headers["content-type"] == "image/jpeg"
    head = requests.head(original_url(live_server.base_url, doc), timeout=10)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(original.content))


def test_an_upload_waits_in_the_bucket_for_any_hosts_worker(upload, queue, settings, clock):
    ticket_id = int(upload(jpeg())["ticket"])
    ref = UploadTicket.get_by_id(ticket_id).file_path
    assert ref.startswith("incoming/") and objects(settings, "incoming") == {ref.split("/")[1]}
    other_host = build_context(settings.with_(data_dir=settings.data_dir + "-other"),
                               clock=clock).uploads  # no disk in common with the receiver
    assert other_host.process_pending() == 1
    assert UploadTicket.get_by_id(ticket_id).state == DONE
    assert objects(settings, "incoming") == set() and objects(settings, "media") == doc_files()
    assert list(other_host.own_spool().iterdir()) == []  # its local copy is gone too


def test_doc_delete_and_replace_remove_their_objects(upload, queue, call, token, token_for,
                                                     owner, settings):
    upload(jpeg(), title="first")
    queue.process_pending()
    doc = Doc.get()
    before = objects(settings, "media")
    call("upload.replace", token=token, doc_id=doc.id,
         files={"file": ("new.jpg", jpeg(640, 480))})
    queue.process_pending()
    after = objects(settings, "media")
    assert after == doc_files() and not after & before  # new secrets, old objects gone
    answer = call("doc.delete", token=token_for(owner, doc="delete"), doc_id=doc.id)
    assert answer["api"]["status"] == "ok"
    assert objects(settings, "media") == set()


def test_video_renditions_live_in_the_bucket(upload, queue, call, token_for, owner, client,
                                             settings, tmp_path):
    """A video's poster thumbnails and renditions go to the bucket, are served from it, and go
    with the doc."""
    upload(write_video(tmp_path / "clip.mp4").read_bytes(), name="clip.mp4")
    queue.process_pending()
    doc = Doc.get()
    stored = objects(settings, "media")
    assert stored == doc_files() and {n.rsplit(".", 2)[1] for n in stored} >= {"ipod", "mp4"}
    assert local_files(settings) == [] and list(queue.own_spool().iterdir()) == []
    rendition = client.simulate_get(thumb_url("", doc, "mp4", "mp4"))
    assert rendition.status_code == 200 and rendition.headers["content-type"] == "video/mp4"
    answer = call("doc.delete", token=token_for(owner, doc="delete"), doc_id=doc.id)
    assert answer["api"]["status"] == "ok" and objects(settings, "media") == set()


def test_media_of_a_replaced_doc_is_served_from_the_bucket(upload, queue, client, settings):
    data = jpeg(500, 400)
    upload(data)
    queue.process_pending()
    doc = Doc.get()
    original = client.simulate_get(original_url("", doc))
    assert original.status_code == 200 and original.content == data
    assert client.simulate_get(thumb_url("", doc, "240")).content.startswith(b"\xff\xd8")
    assert client.simulate_get(thumb_url("", doc, "1600")).status_code == 404  # none that big


def test_a_crash_while_storing_leaves_no_object_once_recovered(upload, queue, settings, clock):
    ticket_id = int(upload(jpeg(800, 600))["ticket"])
    queue.storage = WatchedStorage(queue.storage, killed_at_put(3))
    with pytest.raises(Killed):
        queue.process_pending()
    assert UploadTicket.get_by_id(ticket_id).state == WORKING
    assert len(objects(settings, "media")) == 2  # orphans: the original and one thumbnail

    restarted = build_context(settings, clock=clock).uploads
    clock.advance(settings.upload_lease_seconds + 1)
    assert restarted.recover() == 1
    assert objects(settings, "media") == set()  # the recorded names are removed with the requeue
    assert len(objects(settings, "incoming")) == 1  # the upload waits for the next claimer
    assert restarted.process_pending() == 1
    assert UploadTicket.get_by_id(ticket_id).state == DONE
    assert objects(settings, "media") == doc_files() != set()
    assert objects(settings, "incoming") == set()


def test_a_stopped_store_queues_tickets_again_and_media_answer_503(upload, queue, client,
                                                                    settings, clock, s3_server,
                                                                    caplog, monkeypatch):
    monkeypatch.setattr(storage, "BREAKER_SECONDS", 0.2)  # refused at once, then tried again
    upload(jpeg(), title="served")
    queue.process_pending()
    doc = Doc.get()
    waiting = int(upload(jpeg(400, 300))["ticket"])
    s3_server.stop()

    assert queue.process_pending() == 1
    ticket = UploadTicket.get_by_id(waiting)
    assert ticket.state == QUEUED and ticket.lease_until > clock()  # backing off, not failed
    for path in (thumb_url("", doc, "240"), original_url("", doc)):
        answer = client.simulate_get(path)
        assert answer.status_code == 503 and answer.headers["retry-after"]
        assert client.simulate_head(path).status_code == 503
    refused = upload(jpeg(), title="not kept")["api"]  # nowhere to keep it: retry later
    assert (refused["status"], refused["code"]) == ("error", "503")
    assert SECRET_KEY not in caplog.text
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("api"))
    assert f"doc {doc.id} original" in ours  # named by doc and label, never by its storage name
    assert doc.secret not in ours and doc.original_secret not in ours  # (moto's own log does)

    s3_server.start()
    time.sleep(0.3)  # the breaker closes
    clock.advance(settings.upload_lease_seconds)
    assert queue.process_pending() == 1
    assert UploadTicket.get_by_id(waiting).state == DONE
    assert objects(settings, "media") == doc_files()
    assert client.simulate_get(original_url("", doc)).status_code == 200


def test_backend_maps_errors_and_aborts_cut_uploads(settings, s3_server):
    store = S3Storage(client(s3_server.url), settings.s3_bucket, "site/media/")
    with pytest.raises(FileNotFoundError):
        store.size("00/01/1.abc.original.jpg")
    with pytest.raises(FileNotFoundError):
        store.fetch("00/01/1.abc.original.jpg")
    assert not store.exists("00/01/1.abc.original.jpg")
    store.put("00/01/1.abc.original.jpg", io.BytesIO(b"x" * 100))
    assert store.exists("00/01/1.abc.original.jpg")
    assert store.size("00/01/1.abc.original.jpg") == 100
    with pytest.raises(ValueError):
        store.put("../escape", io.BytesIO(b"x"))
    # What a kill -9 in the middle of a multipart upload leaves: removing the name aborts it.
    key = "site/media/00/02/2.abc.original.jpg"
    store.client.create_multipart_upload(Bucket=settings.s3_bucket, Key=key)
    store.delete("00/02/2.abc.original.jpg")
    assert store.client.list_multipart_uploads(Bucket=settings.s3_bucket).get("Uploads", []) == []
    s3_server.stop()
    unreachable = S3Storage(client(s3_server.url), settings.s3_bucket, "site/media/")
    with pytest.raises(StorageUnavailable):
        unreachable.size("00/01/1.abc.original.jpg")
