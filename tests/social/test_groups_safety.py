"""Groups under load and before other eyes (issue 14, the review's findings): writes naming the
same docs in any order never deadlock, a doc deleted while it is added is refused (never a 500),
a huge id list is refused at once without holding the write lock, and no number, date or title
tells anyone of a doc they may not see (moderation page, counts, ``last_doc_at``, doc.get)."""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any

import pytest
import requests

from api.content.groups import decide_request, join
from api.models.docs import Doc
from api.models.groups import Group, GroupDoc, GroupMember
from api.signing import md5
from tests.auth.conftest import Browser, csrf_of
from tests.conftest import TEST_DATABASE_URL
from tests.social import test_groups
from tests.social.test_groups import joined

make_group, add = test_groups.make_group, test_groups.add  # the fixtures, shared

needs_postgres = pytest.mark.skipif(not TEST_DATABASE_URL, reason="row locks: PostgreSQL only")


def signed_post(session: requests.Session, live: Any, api_key: Any, method: str,
                **params: Any) -> tuple[int, dict]:
    """A signed POST through the live server: its HTTP status and JSON answer."""
    values = {"api_key": api_key.key, **{k: str(v) for k, v in params.items()}}
    values["api_sig"] = md5.signature(values, method, api_key.secret)
    answer = session.post(f"{live.base_url}/api/{method}/json", data=values, timeout=60)
    return answer.status_code, answer.json()


def at_once(*jobs: Any) -> None:
    """Run the jobs in threads started together; wait for all."""
    barrier = threading.Barrier(len(jobs))

    def run(job: Any) -> None:
        barrier.wait()
        job()

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)


# --- F1: the same docs in opposite orders -------------------------------------------------------

def test_adds_and_removes_naming_docs_in_opposite_orders_never_deadlock(
        live_server, api_key, owner, member, make_group, make_doc, token_for, clock):
    group = make_group(owner)
    joined(group, member, clock)
    token = token_for(member, doc="write")
    failures: list[tuple[int, dict]] = []
    for _ in range(12):
        ids = [d.id for d in (make_doc(member) for _ in range(20))]
        for method in ("group.docs.add", "group.docs.remove"):

            def send(order: list[int], method: str = method) -> None:
                status, got = signed_post(requests.Session(), live_server, api_key, method,
                                          auth_token=token, group_id=group.id,
                                          doc_id=",".join(map(str, order)))
                if status != 200 or got["api"]["status"] != "ok":
                    failures.append((status, got))

            at_once(lambda ids=ids, send=send: send(ids),
                    lambda ids=ids, send=send: send(ids[::-1]))
    assert not failures, failures[:3]
    assert GroupDoc.select().where(GroupDoc.group == group.id).count() == 0


# --- F2: a doc deleted while it is added --------------------------------------------------------

def held(database_url: str, statements: list[tuple[str, tuple[Any, ...]]], then: Any) -> None:
    """``statements`` held uncommitted in another connection while ``then`` runs in a thread;
    committed once ``then`` waits for a lock (PostgreSQL: seen in pg_stat_activity; SQLite: its
    write transaction cannot begin before the commit, so a pause lets it get there)."""
    if not database_url.startswith("sqlite"):
        import psycopg2  # the postgres extra, installed where TEST_DATABASE_URL is set

        holding, watching = (psycopg2.connect(database_url) for _ in range(2))
        watching.autocommit = True
    else:
        holding = sqlite3.connect(database_url.split("sqlite:///", 1)[1], isolation_level=None)
        holding.execute("PRAGMA foreign_keys = 1")
        holding.execute("BEGIN IMMEDIATE")
        watching = None
    try:
        cursor = holding.cursor()
        for sql, params in statements:
            cursor.execute(sql if watching else sql.replace("%s", "?"), params)
        worker = threading.Thread(target=then)
        worker.start()
        waited_for = time.monotonic() + (10 if watching else 0.5)
        while worker.is_alive() and time.monotonic() < waited_for:
            if watching:
                with watching.cursor() as seen:
                    seen.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type "
                                 "= 'Lock' AND datname = current_database()")
                    if seen.fetchone()[0]:
                        break
            time.sleep(0.02)
        holding.commit()
        worker.join(timeout=30)
    finally:
        holding.close()
        if watching:
            watching.close()


def held_delete(database_url: str, doc_id: int, then: Any) -> None:
    """doc.delete's statements on ``doc_id`` held uncommitted while ``then`` runs."""
    held(database_url, [("SELECT id FROM docs WHERE id = %s FOR UPDATE", (doc_id,)),
                        ("DELETE FROM group_docs WHERE doc_id = %s", (doc_id,)),
                        ("DELETE FROM thumbs WHERE doc_id = %s", (doc_id,)),
                        ("DELETE FROM docs WHERE id = %s", (doc_id,))], then)


@needs_postgres
def test_a_doc_deleted_while_added_is_refused_not_a_500(settings, owner, member, make_group,
                                                        make_doc, add, clock):
    group = make_group(owner)
    joined(group, member, clock)
    kept, gone = make_doc(member), make_doc(member)
    answers: list[dict] = []
    held_delete(settings.database_url, gone.id,
                lambda: answers.append(add(member, group, kept, gone)))
    got = answers[0]
    assert got["api"]["status"] == "ok", got
    assert [(d["doc_id"], d["added"], d["error"]) for d in got["group"]["doc"]] == [
        (str(kept.id), "1", "0"), (str(gone.id), "0", "1")]
    assert [r.doc_id for r in GroupDoc.select()] == [kept.id]


@needs_postgres
def test_the_pages_add_of_a_doc_being_deleted_is_refused(settings, client, owner, member,
                                                         make_group, make_doc, clock):
    group = make_group(owner)
    joined(group, member, clock)
    doc = make_doc(member)
    browser = Browser(client)
    browser.login("member", "member-password")
    url = f"/group/{group.id}"
    token = csrf_of(browser.get(url).text)
    answers: list[Any] = []
    held_delete(settings.database_url, doc.id, lambda: answers.append(browser.post(
        url, {"csrf_token": token, "action": "add", "doc_id": str(doc.id)})))
    assert answers[0].status_code == 400 and "Choose one of your documents." in answers[0].text
    assert GroupDoc.select().count() == 0


def test_adds_removes_and_deletes_at_once_never_fail(live_server, api_key, owner, member,
                                                     make_group, make_doc, token_for, clock):
    group = make_group(owner)
    joined(group, member, clock)
    ids = [make_doc(member).id for _ in range(24)]
    tokens = {"member": token_for(member, doc="delete"), "owner": token_for(owner, doc="write")}
    failures: list[tuple[str, int, dict]] = []
    stop = time.monotonic() + 4

    def writer(seed: int) -> None:
        session = requests.Session()
        step = 0
        while time.monotonic() < stop:
            step += 1
            method = ("group.docs.add", "group.docs.remove")[(seed + step) % 2]
            token = tokens["owner" if method.endswith("remove") and seed % 2 else "member"]
            chosen = ids[(seed * 5 + step) % 19:][:5]
            status, got = signed_post(session, live_server, api_key, method, auth_token=token,
                                      group_id=group.id,
                                      doc_id=",".join(map(str, chosen[::1 - 2 * (step % 2)])))
            if status != 200 or got["api"]["status"] != "ok":
                failures.append((method, status, got))

    def deleter() -> None:
        session = requests.Session()
        for doc_id in ids[::2]:
            status, got = signed_post(session, live_server, api_key, "doc.delete",
                                      auth_token=tokens["member"], doc_id=doc_id)
            if status != 200 or got["api"]["status"] != "ok":
                failures.append(("doc.delete", status, got))
            time.sleep(0.15)

    at_once(*(lambda seed=seed: writer(seed) for seed in range(5)), deleter)
    assert not failures, failures[:3]
    assert Doc.select().where(Doc.id.in_(ids)).count() == len(ids) // 2


# --- a group deleted while it is written to (second review, F1) -----------------------------------

def while_group_deleted(settings: Any, group: Group, write: Any) -> Any:
    """``write()``'s answer, sent while another connection holds an uncommitted delete of
    ``group`` (the page's delete inside its transaction), which commits once it waits."""
    answers: list[Any] = []
    held(settings.database_url, [("DELETE FROM groups WHERE id = %s", (group.id,))],
         lambda: answers.append(write()))
    assert Group.get_or_none(Group.id == group.id) is None
    return answers[0]


def test_a_doc_added_to_a_group_being_deleted_finds_no_group(settings, owner, member,
                                                             make_group, make_doc, add, clock):
    """group.docs.add waits for the delete, then answers 1 (a foreign-key 500 on PostgreSQL)."""
    group = make_group(owner)
    joined(group, member, clock)
    doc = make_doc(member)
    got = while_group_deleted(settings, group, lambda: add(member, group, doc))
    assert got["api"]["code"] == "1", got
    assert GroupDoc.select().count() == 0


@pytest.mark.parametrize(("access", "who", "action"), [
    ("open", "member", "join"), ("invitation", "owner", "invite"), ("open", "member", "add")])
def test_a_page_form_on_a_group_being_deleted_is_a_404(settings, client, owner, member,
                                                       make_group, make_doc, clock, access,
                                                       who, action):
    """Join (a 500 on both databases), invite (a 500 on PostgreSQL), add: the form reads the
    group locked in its transaction, so it waits for the delete and then finds no group."""
    group = make_group(owner, access=access)
    form = {"action": action, "username": "member"}
    if action == "add":
        joined(group, member, clock)
        form["doc_id"] = str(make_doc(member).id)
    browser = Browser(client)
    browser.login(who, f"{who}-password")
    url = f"/group/{group.id}"
    form["csrf_token"] = csrf_of(browser.get(url).text)
    got = while_group_deleted(settings, group, lambda: browser.post(url, form))
    assert got.status_code == 404, got.text[:300]
    assert GroupMember.select().count() == GroupDoc.select().count() == 0


def test_a_request_accepted_in_a_group_being_deleted_is_a_404(settings, client, owner, member,
                                                              make_group, clock):
    group = make_group(owner, access="moderated")
    assert join(group, member, int(clock())) == "requested"
    browser = Browser(client)
    browser.login("owner", "owner-password")
    url = f"/group/{group.id}/moderate"
    form = {"csrf_token": csrf_of(browser.get(url).text), "what": "member",
            "id": str(member.id), "decision": "accept"}
    got = while_group_deleted(settings, group, lambda: browser.post(url, form))
    assert got.status_code == 404, got.text[:300]
    assert GroupMember.select().count() == 0


# --- F3: a huge id list -------------------------------------------------------------------------

def test_a_huge_id_list_is_refused_at_once_without_blocking_writers(
        live_server, api_key, owner, member, make_group, make_doc, token_for, clock):
    group = make_group(owner)
    joined(group, member, clock)
    doc = make_doc(member)
    huge = ",".join(str(n) for n in range(1, 50_001))
    answers: dict[str, Any] = {}

    def big() -> None:
        started = time.monotonic()
        answers["big"] = signed_post(requests.Session(), live_server, api_key,
                                     "group.docs.add", auth_token=token_for(owner, doc="write"),
                                     group_id=group.id, doc_id=huge)
        answers["took"] = time.monotonic() - started

    def small() -> None:
        time.sleep(0.05)
        answers["small"] = signed_post(requests.Session(), live_server, api_key,
                                       "group.docs.add",
                                       auth_token=token_for(member, doc="write"),
                                       group_id=group.id, doc_id=doc.id)

    at_once(big, small)
    assert answers["big"][1]["api"]["code"] == "2" and answers["took"] < 2, answers
    assert answers["small"][1]["group"]["added"] == "1", answers["small"]
    removed = signed_post(requests.Session(), live_server, api_key, "group.docs.remove",
                          auth_token=token_for(owner, doc="write"), group_id=group.id,
                          doc_id=huge)
    assert removed[1]["api"]["code"] == "2"


# --- F4: the moderation page --------------------------------------------------------------------

def test_the_moderation_page_shows_only_what_the_moderator_may_see(
        client, owner, member, make_group, make_doc, add, relate, call, clock):
    group = make_group(owner, access="moderated")
    join(group, member, int(clock()))
    decide_request(group, member.id, accept=True, now=int(clock()))
    secret = make_doc(member, title="Secret diary", is_public=False)
    for_friends = make_doc(member, title="Beach day", is_public=False, is_friend=True)
    relate(member, owner, friend=True)
    assert add(member, group, secret, for_friends)["group"]["pending"] == "2"
    moderator = Browser(client)
    moderator.login("owner", "owner-password")
    url = f"/group/{group.id}/moderate"
    page = moderator.get(url)
    assert "Secret diary" not in page.text
    assert f"a document you may not see (#{secret.id})" in page.text
    assert "Beach day" in page.text
    decided = moderator.post(url, {"csrf_token": csrf_of(page.text), "what": "doc",
                                   "id": str(secret.id), "decision": "accept"})
    assert "Accepted." in decided.text
    assert GroupDoc.get(GroupDoc.doc == secret.id).pending is False
    answer = call("group.docs.getList", group_id=group.id)
    assert answer["group"]["docs"]["doc"] == []  # the pool still hides it


# --- F5: numbers and dates per viewer -----------------------------------------------------------

def test_numbers_and_last_doc_at_count_only_what_the_viewer_may_see(
        client, call, owner, member, stranger, make_group, make_doc, add, token_for, clock):
    group = make_group(owner, "Visible numbers")
    joined(group, member, clock)
    public = make_doc(member)
    add(member, group, public)
    first = int(clock())
    clock.advance(100)
    private = make_doc(member, is_public=False)
    got = add(member, group, private)["group"]
    assert got["total"] == "2"  # the member sees their own doc
    assert Group.get_by_id(group.id).last_doc_at == first  # a private doc moves no order
    reader = token_for(member, doc="read")
    outsider = token_for(stranger, doc="read")

    def numbers(token: str | None) -> list[tuple[str, str]]:
        extra = {"token": token} if token else {}
        seen = [call("group.get", group_id=group.id, **extra)["group"],
                call("group.getList", user_id=member.id, **extra)["groups"]["group"][0],
                call("group.search", text="visible", **extra)["groups"]["group"][0],
                call("explore.groups.getRandom", **extra)["groups"]["group"][0]]
        return [(g["count"]["docs"], g["dates"]["last_doc_at"]) for g in seen]

    assert numbers(None) == [("1", str(first))] * 4
    assert numbers(outsider) == [("1", str(first))] * 4
    assert numbers(reader) == [("2", str(first + 100))] * 4
    containers = call("doc.getContainers", doc_id=public.id)["groups"]["group"][0]
    assert containers["docs"] == "1"
    assert call("doc.getContainers", doc_id=public.id, token=reader)["groups"]["group"][0][
        "docs"] == "2"
    assert call("group.docs.remove", token=token_for(owner, doc="write"), group_id=group.id,
                doc_id=public.id)["group"]["total"] == "0"  # the admin may not see the other
    page = Browser(client)
    assert 'id="docs">0<' in page.get(f"/group/{group.id}").text
    page.login("member", "member-password")
    assert 'id="docs">1<' in page.get(f"/group/{group.id}").text


# --- F6: doc.get counts the groups --------------------------------------------------------------

def test_doc_get_counts_the_groups_the_viewer_may_see(call, owner, member, make_group,
                                                      make_doc, add, token_for, clock):
    doc = make_doc(member)
    public = make_group(owner, "Open and public")
    hidden = make_group(owner, "Members only", is_public=False)
    moderated = make_group(owner, "Moderated", access="moderated")
    for group in (public, hidden):
        joined(group, member, clock)
        add(member, group, doc)
    join(moderated, member, int(clock()))
    decide_request(moderated, member.id, accept=True, now=int(clock()))
    assert add(member, moderated, doc)["group"]["pending"] == "1"
    assert call("doc.get", doc_id=doc.id)["doc"]["count"]["groups"] == "1"
    assert call("doc.get", doc_id=doc.id, token=token_for(member, doc="read"))["doc"]["count"][
        "groups"] == "2"


# --- F7: moderators appointed, a group deleted --------------------------------------------------

def test_an_admin_appoints_and_demotes_moderators_on_the_page(client, owner, member, stranger,
                                                              make_group, clock):
    group = make_group(owner, access="moderated")
    assert join(group, member, int(clock())) == "requested"
    decide_request(group, member.id, accept=True, now=int(clock()))
    admin, appointed = Browser(client), Browser(client, "10.0.0.2")
    admin.login("owner", "owner-password")
    appointed.login("member", "member-password")
    url = f"/group/{group.id}/moderate"
    assert appointed.get(url).status_code == 404  # not yet a moderator
    page = admin.get(url)
    form = {"csrf_token": csrf_of(page.text), "what": "role", "id": str(member.id),
            "role": "moderator"}
    assert admin.post(url, {**form, "csrf_token": "forged"}).status_code == 403
    assert "Done." in admin.post(url, form).text
    assert "Nothing changed." in admin.post(url, form).text
    mine = appointed.get(url)
    assert mine.status_code == 200 and "Make moderator" not in mine.text  # admins only
    token = csrf_of(appointed.get(f"/group/{group.id}").text)
    refused = appointed.post(url, {**form, "csrf_token": token,
                                   "id": str(owner.id), "role": "member"})
    assert refused.status_code == 403
    assert admin.post(url, {**form, "role": "admin"}).status_code == 400
    assert "Done." in admin.post(url, {**form, "role": "member"}).text
    assert appointed.get(url).status_code == 404


def test_an_admin_deletes_a_group_after_confirming(client, owner, member, make_group, make_doc,
                                                   add, clock):
    group = make_group(owner)
    joined(group, member, clock)
    doc = make_doc(member)
    add(member, group, doc)
    admin, other = Browser(client), Browser(client, "10.0.0.2")
    admin.login("owner", "owner-password")
    other.login("member", "member-password")
    url = f"/group/{group.id}"
    page = admin.get(url)
    assert 'id="delete-group"' in page.text and 'id="delete-group"' not in other.get(url).text
    form = {"csrf_token": csrf_of(page.text), "action": "delete"}
    assert "Tick the box" in admin.post(url, form).text
    assert admin.post(url, {**form, "confirm": "yes", "csrf_token": "forged"}).status_code == 403
    refused = other.post(url, {**form, "confirm": "yes",
                               "csrf_token": csrf_of(other.get(url).text)})
    assert refused.status_code == 400 and Group.get_or_none(Group.id == group.id) is not None
    done = admin.post(url, {**form, "confirm": "yes"})
    assert done.status_code == 303 and done.headers["location"] == "/groups"
    assert admin.get(url).status_code == 404
    assert Group.get_or_none(Group.id == group.id) is None
    assert GroupDoc.select().count() == 0 and Doc.get_or_none(Doc.id == doc.id) is not None
    assert GroupMember.select().count() == 0
