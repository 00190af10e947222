"""Blog posts and documents read, replied to and edited while they are deleted (issue 14), through
a live server: a read racing a delete answers the post or "not found", never 500 or 503 (a
visit's foreign key, a deadlock of the visit with the cascade); a reply or an edit racing the
delete of its comment answers "Comment not found", never a foreign-key violation or an ok for a
row that is gone. Rounds of threads, on SQLite and PostgreSQL."""

from __future__ import annotations

import importlib
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import requests

from api.models.docs import Comment, Doc
from api.models.posts import Post, PostComment
from api.signing import md5
from tests.auth.conftest import csrf_of
from tests.social.test_posts import READ_ALL, WRITE_ALL

ROUNDS = 30


def a_post(owner: Any) -> Post:
    """A public post of ``owner``'s (its times do not matter here)."""
    return Post.create(owner=owner, title="A post", body="Its text.", created_at=1,
                       posted_at=1, modified_at=1)


@pytest.fixture
def api(live_server, api_key) -> Callable[..., tuple[int, str]]:
    """``api(token, method, **params)``: a signed JSON call to the live server; its HTTP status
    and its API code (``"ok"`` when it succeeded)."""

    def send(token: str, method: str, **params: Any) -> tuple[int, str]:
        values = {name: str(value) for name, value in params.items()}
        values.update(api_key=api_key.key, auth_token=token)
        values["api_sig"] = md5.signature(values, method, api_key.secret)
        answer = requests.post(f"{live_server.base_url}/api/{method}/json", data=values,
                               timeout=60)
        if not answer.headers.get("content-type", "").startswith("application/json"):
            return answer.status_code, "not json"
        return answer.status_code, answer.json()["api"].get("code", "ok")

    return send


def race(*actions: Callable[[], None]) -> None:
    """Run ``actions`` at once, each in its thread, and wait for them all."""
    threads = [threading.Thread(target=action) for action in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)


def reads_racing_deletes(api: Callable[..., tuple[int, str]], token: str, family: str,
                         make: Callable[[], Any], delete: Callable[[int], Any]) -> Counter[Any]:
    """ROUNDS times, a new post (doc) from ``make`` read by three threads, three times each, while
    ``delete`` deletes it; how often each (HTTP status, API code) was answered."""
    answers: Counter[Any] = Counter()
    for _round in range(ROUNDS):
        row_id = make().id

        def read(row_id: int = row_id) -> None:
            for _ in range(3):
                answers[api(token, f"{family}.get", **{f"{family}_id": row_id})] += 1

        race(read, read, read, lambda row_id=row_id: delete(row_id))
    return answers


def test_post_get_racing_the_posts_delete(live_server, api, owner, member, token_for):
    session = requests.Session()
    login = session.get(live_server.base_url + "/login")
    assert session.post(live_server.base_url + "/login", allow_redirects=False, data={
        "csrf_token": csrf_of(login.text), "username": "owner",
        "password": "owner-password"}).status_code == 303
    csrf = csrf_of(session.get(live_server.base_url + "/posts/new").text)
    deleted: Counter[int] = Counter()

    def delete(post_id: int) -> None:
        deleted[session.post(f"{live_server.base_url}/posts/{post_id}/delete",
                             data={"csrf_token": csrf}, allow_redirects=False).status_code] += 1

    answers = reads_racing_deletes(api, token_for(member, **READ_ALL), "post",
                                   lambda: a_post(owner), delete)
    assert set(answers) <= {(200, "ok"), (200, "1")}, answers
    assert deleted == {303: ROUNDS}
    assert Post.select().count() == 0


def test_doc_get_racing_the_docs_delete(api, owner, member, make_doc, token_for):
    deleter = token_for(owner, doc="delete")
    answers = reads_racing_deletes(api, token_for(member, doc="read"), "doc",
                                   lambda: make_doc(owner),
                                   lambda doc_id: api(deleter, "doc.delete", doc_id=doc_id))
    assert set(answers) <= {(200, "ok"), (200, "1")}, answers
    assert Doc.select().count() == 0


@pytest.mark.parametrize("family", ["post", "doc"])
def test_reply_and_edit_racing_the_comments_delete(api, owner, member, make_doc, token_for,
                                                   family):
    writer = token_for(member, **(WRITE_ALL | {"doc": "write"}))
    owners = token_for(owner, **(WRITE_ALL | {"doc": "write"}))
    parent_id = {"post": "post_id", "doc": "doc_id"}[family]
    model = {"post": PostComment, "doc": Comment}[family]
    answers: Counter[str] = Counter()
    for _round in range(ROUNDS):
        parent = a_post(owner) if family == "post" else make_doc(owner)
        status, _code = api(writer, f"{family}.comments.add", content="first",
                            **{parent_id: parent.id})
        comment = model.select().order_by(model.id.desc()).first()
        assert status == 200 and comment is not None

        def reply(comment_id: int = comment.id) -> None:
            status, code = api(writer, f"{family}.comments.reply", comment_id=comment_id,
                               content="a reply")
            answers[f"reply {status} {code}"] += 1

        def edit(comment_id: int = comment.id) -> None:
            status, code = api(writer, f"{family}.comments.edit", comment_id=comment_id,
                               content="edited")
            answers[f"edit {status} {code}"] += 1

        def delete(comment_id: int = comment.id) -> None:
            status, code = api(owners, f"{family}.comments.delete", comment_id=comment_id)
            answers[f"delete {status} {code}"] += 1

        race(reply, edit, delete)
        assert model.get_or_none(model.id == comment.id) is None
    assert answers["delete 200 ok"] == ROUNDS
    assert set(answers) <= {"delete 200 ok", "reply 200 ok", "reply 200 1", "edit 200 ok",
                            "edit 200 1"}, answers
    # an edit that answered ok came before the delete, and the comment's replies went with it
    assert model.select().count() == 0


# --- the same races, made certain: the delete lands between the read and the write -------------

def deleting(monkeypatch, module: str, finder: str, delete: Callable[[], Any], *,
             after: bool) -> None:
    """Make ``module``'s ``finder`` (which finds and, in a write, locks the post or doc) run
    ``delete`` before it (what a delete committed while the method waited for the lock leaves it)
    or ``after`` it (a delete committed just after the method read its row)."""
    find = getattr(importlib.import_module(module), finder)

    def racing(*args: Any) -> Any:
        if not after:
            delete()
        found = find(*args)
        if after:
            delete()
        return found

    monkeypatch.setattr(f"{module}.{finder}", racing)


@pytest.mark.parametrize("family", ["post", "doc"])
def test_a_get_whose_parent_is_deleted_meanwhile_still_answers(call, monkeypatch, owner, member,
                                                               make_doc, token_for, family):
    """A read that found the post (doc) before its delete answers what it read, uncounted."""
    if family == "post":
        row, model, token = a_post(owner), Post, token_for(member, **READ_ALL)
    else:
        row, model, token = make_doc(owner), Doc, token_for(member, doc="read")
    deleting(monkeypatch, f"api.methods.{family}.read", f"visible_{family}",
             lambda: model.delete().where(model.id == row.id).execute(), after=True)
    answer = call.raw(f"{family}.get", token=token, **{f"{family}_id": row.id})
    assert answer.status_code == 200 and answer.json["api"]["status"] == "ok", answer.text
    assert answer.json[family]["you"]["visits"] in (0, "0")


@pytest.mark.parametrize("family", ["post", "doc"])
@pytest.mark.parametrize("method", ["reply", "edit"])
def test_a_comment_deleted_meanwhile_is_not_found(call, monkeypatch, owner, member, make_doc,
                                                  token_for, family, method):
    token = token_for(member, **(WRITE_ALL | {"doc": "write"}))
    parent = a_post(owner) if family == "post" else make_doc(owner)
    model = {"post": PostComment, "doc": Comment}[family]
    added = call(f"{family}.comments.add", token=token, content="first",
                 **{f"{family}_id": parent.id})
    comment_id = int(added["comment"]["comment_id"])
    deleting(monkeypatch, f"api.methods.{family}.comments", f"visible_{family}",
             lambda: model.delete().where(model.id == comment_id).execute(), after=False)
    answer = call.raw(f"{family}.comments.{method}", token=token, comment_id=comment_id,
                      content="late")
    assert answer.status_code == 200, answer.text
    assert answer.json["api"].get("code") == "1", answer.text
    # (the error rolled the simulated delete back with the rest: nothing was written)
    assert [row.content for row in model.select()] == ["first"]
