"""PyIpernity 0.3.1 over many uploads: getMedias, and walk_data paging through doc.getList."""

from __future__ import annotations

import pytest
from ipernity import IpernityAPI

from tests.upload.conftest import jpeg


@pytest.fixture
def api(live_server, api_key, token) -> IpernityAPI:
    return IpernityAPI(api_key.key, api_key.secret, token=token,
                       url=live_server.base_url + "/api/")


def test_walk_doc_list_over_25_uploads(api, queue, owner, tmp_path):
    queue.start()
    uploaded = []
    for n in range(25):
        path = tmp_path / f"photo{n}.jpg"
        path.write_bytes(jpeg(40 + n, 30, color=(n * 9, 100, 200)))
        # async=0 makes upload.file wait for its ticket, so upload_file never sleeps on eta.
        uploaded.append(api.upload_file(str(path), title=f"Photo {n}", **{"async": 0}))
    assert len(set(uploaded)) == 25

    walked = list(api.walk_data("doc.getList", user_id=owner.id, per_page=10))
    assert sorted(doc["doc_id"] for doc in walked) == sorted(uploaded)
    assert {doc["title"] for doc in walked} == {f"Photo {n}" for n in range(25)}

    first = api.doc.getList(user_id=owner.id, per_page=10, page=3)["docs"]
    assert (first["page"], first["pages"], first["per_page"], first["total"], first["count"]) == (
        "3", "3", "10", "25", "5")

    medias = api.doc.getMedias(doc_id=uploaded[0])  # thumbs, medias, original side by side
    assert {thumb["label"] for thumb in medias["thumbs"]["thumb"]} >= {"75x"}
    assert medias["original"]["url"].startswith(api._url.removesuffix("/api/") + "/media/")
