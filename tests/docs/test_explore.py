"""explore.docs.getRecent: shape, public documents only, newest first, count, safesurf, errors."""

from __future__ import annotations

import pytest

from api.models.docs import Relation
from keys import store
from tests.docs.shapes import compare

METHOD = "explore.docs.getRecent"


@pytest.fixture
def stranger(ctx):
    return store.add_user("stranger", "stranger-password")


def ids(answer: dict) -> list[int]:
    return [int(d["doc_id"]) for d in answer["docs"]["doc"]]


def test_shape(call, owner, make_doc):
    make_doc(owner, license=3)
    compare(METHOD, call.raw(METHOD, "xml").content,
            added={"docs/doc@safety", "docs/doc/owner@username", "docs/doc/owner@realname"})
    assert call(METHOD)["docs"]["count"] == "1"


def test_an_empty_list_keeps_its_item_key(call):
    assert call(METHOD)["docs"] == {"count": "0", "doc": []}


def test_newest_public_documents_of_everyone(call, owner, member, stranger, make_doc,
                                             token_for):
    first = make_doc(owner)
    make_doc(owner, is_public=False)
    family = make_doc(member, is_public=False, is_family=True)
    Relation.create(user=member, contact=owner, is_family=True)  # owner is member's family
    second = make_doc(member)
    third = make_doc(stranger)
    expected = [third.id, second.id, first.id]
    assert ids(call(METHOD)) == expected
    # A token shows no private or family document here, not even the caller's own.
    assert ids(call(METHOD, token=token_for(owner, doc="read"))) == expected
    assert family.id not in ids(call(METHOD, token=token_for(owner, doc="read")))
    item = call(METHOD)["docs"]["doc"][0]
    assert item["owner"] == {"user_id": str(stranger.id), "username": "stranger",
                             "realname": stranger.realname}
    assert item["thumb"]["label"] == "75x"


def test_count_default_maximum_and_limit(call, owner, make_doc):
    docs = [make_doc(owner) for _ in range(105)]
    assert len(ids(call(METHOD))) == 50
    assert ids(call(METHOD, count=3)) == [d.id for d in reversed(docs[-3:])]
    got = call(METHOD, count=500)["docs"]
    assert got["count"] == "100" and len(got["doc"]) == 100  # lowered, like per_page


def test_safesurf_media_extra_and_thumbsize(call, owner, stranger, make_doc, token_for):
    docs = {level: make_doc(owner, safety=level) for level in (1, 2, 3)}
    video = make_doc(owner, media="video", lat=1.5, lng=2.5)
    assert ids(call(METHOD)) == [video.id, docs[1].id]
    assert ids(call(METHOD, safesurf=3)) == [video.id, docs[2].id, docs[1].id]  # capped at 2
    assert len(ids(call(METHOD, token=token_for(stranger, doc="read"), safesurf=3))) == 4
    assert ids(call(METHOD, media="video")) == [video.id]
    got = call(METHOD, media="video", extra="dates,geo,medias,md5", thumbsize="240")
    item = got["docs"]["doc"][0]
    assert item["geo"] == {"lat": "1.5", "lng": "2.5"} and item["medias"] == {"media": []}
    assert item["dates"]["posted_at"] == str(video.posted_at)
    assert "md5" not in item  # not one of this method's extras (spec §10.3)
    assert item["thumb"]["label"] == "240"


@pytest.mark.parametrize("params", [{"count": 0}, {"count": -1}, {"count": "x"},
                                    {"safesurf": 4}, {"media": "painting"}])
def test_invalid_arguments_are_code_2(call, params):
    assert call(METHOD, **params)["api"] == {"status": "error", "code": "2",
                                             "message": "Invalid argument"}


def test_declares_its_errors_and_the_spec_flags(call):
    method = call("api.methods.get", method=METHOD)["method"]
    assert method["authentication"] == {"token": "0", "sign": "0", "post": "0"}
    assert method["permissions"] == {"doc": "read"} and method["service"] == "explore"
    assert [e["code"] for e in method["errors"]["error"] if int(e["code"]) < 100] == ["2"]


def test_no_query_per_row(call, owner, make_doc, count_queries):
    for _ in range(30):
        make_doc(owner)
    call(METHOD)  # warm-up: the key is looked up once, then cached
    counts = []
    for count in (2, 30):
        with count_queries() as log:
            assert len(ids(call(METHOD, count=count, extra="owner,dates,geo"))) == count
        counts.append(len(log))
    assert counts[0] == counts[1] <= 2  # the docs with their owners, then their thumbs
