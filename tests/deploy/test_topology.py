"""Issue 11's acceptance, through nginx: ``python -m api.cluster`` with 3 app processes on one
PostgreSQL database, with one shared data dir and again with media in an S3 bucket (moto's
server). 30 PyIpernity uploads each done exactly once, every thumbnail served, every deleted
doc's files gone; the login and authorize pages; the quota and the login throttle exact under
barrier-released races; a key disabled with the CLI refused by every process within a second.

Three processes started at once on an empty database: tests/core/test_migrations.py
(``test_three_processes_started_at_once_on_an_empty_database_all_come_up``), on PostgreSQL in the
same run."""

from __future__ import annotations

import json
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from ipernity import IpernityAPI

from tests.core.test_limits_processes import (
    GUESSES,
    QUOTA,
    QUOTA_CODES,
    quota_upload,
    race,
    wrong_guess,
)
from tests.deploy.conftest import Cluster, cluster, desktop_token, needs_postgres
from tests.upload.conftest import jpeg
from tests.upload.test_s3_storage import SECRET_KEY, S3Server, client, objects

pytestmark = needs_postgres

UPLOADS = 30
QUOTA_PHOTO = jpeg(64, 48)


@pytest.fixture(params=["shared dir", "s3"])
def storage(request, tmp_path):
    """``(cluster environment, stored names)``: ``stored(folder)`` lists the files under
    ``media`` or ``incoming`` wherever this variant keeps them."""
    if request.param == "shared dir":
        def on_disk(folder: str) -> set[str]:
            root = tmp_path / "data" / folder
            return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}

        yield {}, on_disk
        return
    server = S3Server()
    server.start()
    bucket = f"media-{secrets.token_hex(6)}"
    client(server.url).create_bucket(Bucket=bucket)
    where = SimpleNamespace(s3_endpoint_url=server.url, s3_bucket=bucket, s3_prefix="site/")
    yield ({"API_STORAGE": "s3", "API_S3_BUCKET": bucket, "API_S3_ENDPOINT_URL": server.url,
            "API_S3_REGION": "us-east-1", "API_S3_ACCESS_KEY": "test-access",
            "API_S3_SECRET_KEY": SECRET_KEY, "API_S3_PREFIX": "site/",
            "API_S3_ADDRESSING_STYLE": "path"},
           lambda folder: objects(where, folder))
    server.stop()


def doc_ids(names: set[str]) -> set[int]:
    """The documents that stored files belong to (``00/07/7.<secret>.<label>.<ext>``)."""
    return {int(name.rsplit("/", 1)[-1].split(".", 1)[0]) for name in names}


def hello(running: Cluster, key: str) -> tuple[str, str]:
    """test.hello through nginx: (the code, the process that answered)."""
    answer = requests.get(f"{running.base}/api/test.hello/json", params={"api_key": key},
                          timeout=10)
    return answer.json()["api"].get("code", "0"), answer.headers["X-Upstream"]


def media_urls(api: IpernityAPI, doc_id: str) -> list[str]:
    """The original's and every thumbnail's URL, as doc.get gives them to the owner."""
    doc = api.doc.get(doc_id=doc_id, extra="original")["doc"]
    return [doc["original"]["url"], *(thumb["url"] for thumb in doc["thumbs"]["thumb"])]


def test_three_processes_behind_nginx(storage, tmp_path):
    env, stored = storage
    with cluster(tmp_path, API_MONTHLY_UPLOAD_BYTES=str(QUOTA * len(QUOTA_PHOTO)),
                 **env) as running:
        running.keys("user", "add", "member", "--password", "member-password", "--pro")
        running.keys("user", "add", "limited", "--password", "limited-password")
        running.keys("user", "add", "target", "--password", "the-right-password")
        created = json.loads(running.keys("create", "--owner", "member", "--name", "Topology"))
        key = SimpleNamespace(key=created["api_key"], secret=created["secret"])
        # the login and authorize pages, each request on any process (one session secret)
        token = desktop_token(running.base, key.key, key.secret, "member", "member-password",
                              doc="delete")
        api = IpernityAPI(key.key, key.secret, token=token, url=running.base + "/api/")

        photo = tmp_path / "photo.jpg"
        photo.write_bytes(jpeg(400, 300))
        with ThreadPoolExecutor(max_workers=6) as pool:
            made = list(pool.map(lambda n: api.upload_file(str(photo), title=f"photo {n}"),
                                 range(UPLOADS)))
        tickets = running.sql("SELECT state, doc_id FROM upload_tickets")
        assert sorted(state for state, _ in tickets) == ["done"] * UPLOADS
        assert {str(doc) for _, doc in tickets} == set(made) and len(set(made)) == UPLOADS
        assert running.sql("SELECT count(*) FROM docs") == [(UPLOADS,)]

        urls = {doc: media_urls(api, doc) for doc in made}
        upstreams = set()
        for url in (url for doc_urls in urls.values() for url in doc_urls):
            served = requests.get(url, timeout=10)
            assert served.status_code == 200 and served.content.startswith(b"\xff\xd8"), url
            upstreams.add(served.headers["X-Upstream"])
        assert len(upstreams) == 3
        assert doc_ids(stored("media")) == {int(doc) for doc in made}

        deleted = made[::3]
        for doc in deleted:
            assert api.doc.delete(doc_id=doc)["api"]["status"] == "ok"
        for doc, doc_urls in urls.items():
            codes = {requests.get(url, timeout=10).status_code for url in doc_urls}
            assert codes == ({404} if doc in deleted else {200}), doc
        assert doc_ids(stored("media")) == {int(doc) for doc in made if doc not in deleted}
        assert stored("incoming") == set()

        limited_token = desktop_token(running.base, key.key, key.secret, "limited",
                                      "limited-password", doc="write")
        bases = [running.base] * 3
        assert sorted(race(bases, quota_upload(key, limited_token, QUOTA_PHOTO))
                      ) == QUOTA_CODES
        assert sorted(race(bases, wrong_guess)) == GUESSES

        before = [hello(running, key.key) for _ in range(9)]  # every process caches the key
        assert {code for code, _ in before} == {"0"} and len({up for _, up in before}) == 3
        running.keys("disable", key.key)
        time.sleep(1.0)
        after = [hello(running, key.key) for _ in range(9)]
        assert {code for code, _ in after} == {"101"} and len({up for _, up in after}) == 3
    assert not list(Path(tmp_path, "data", "spool").glob("*/*"))
