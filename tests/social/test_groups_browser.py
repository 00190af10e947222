"""Groups in Debian chromium (issue 14's acceptance): a member signs up and creates a moderated
group on the page, a second member asks to join and is accepted, submits documents through
group.docs.add that stay pending until the moderator accepts them on the page, and then
group.docs.getList shows them; the private one never shows to anybody else."""

from __future__ import annotations

from typing import Any

import requests

from api.models.groups import Group
from api.signing import md5
from tests.auth.conftest import chromium  # noqa: F401 (fixture)


def log_in(page: Any, base: str, username: str, password: str, target: str) -> None:
    page.goto(f"{base}/login?next={target}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button:has-text('Log in')")
    page.wait_for_url(f"**{target}")


def api(base: str, key: Any, method: str, **params: Any) -> dict:
    """A signed call, the way any client makes it."""
    values = {"api_key": key.key, **{name: str(value) for name, value in params.items()}}
    values["api_sig"] = md5.signature(values, method, key.secret)
    return requests.post(f"{base}/api/{method}/json", data=values, timeout=30).json()


def pool_ids(base: str, key: Any, group_id: int, **params: Any) -> list[int]:
    got = api(base, key, "group.docs.getList", group_id=group_id, **params)
    return [int(doc["doc_id"]) for doc in got["group"]["docs"]["doc"]]


def test_a_moderated_group_in_chromium(chromium, live_server, api_key, member,  # noqa: F811
                                       make_doc, token_for, tmp_path):
    base = live_server.base_url
    creator_view = chromium.new_context(viewport={"width": 1280, "height": 900})
    member_view = chromium.new_context(viewport={"width": 1280, "height": 900})
    try:
        creator = creator_view.new_page()
        creator.goto(base + "/signup?next=/groups/new")
        creator.fill("input[name=username]", "alice")
        creator.fill("input[name=password]", "alice-password")
        creator.click("button:has-text('Sign up')")
        creator.wait_for_url("**/groups/new")
        creator.fill("#new-group input[name=title]", "Tabby cats")
        creator.fill("#new-group textarea[name=description]", "Striped cats only, please.")
        creator.select_option("#new-group select[name=lang]", "en")
        creator.check("#new-group input[value=moderated]")
        creator.click("#new-group button:has-text('Create the group')")
        creator.wait_for_url("**/group/*")
        assert creator.text_content("h1") == "Tabby cats"
        assert creator.text_content("#members") == "1"
        group = Group.get(Group.title == "Tabby cats")
        group_url = f"/group/{group.id}"

        joiner = member_view.new_page()
        log_in(joiner, base, "member", "member-password", group_url)
        joiner.click("#membership button:has-text('Ask to join')")
        assert "asked to join" in joiner.text_content("#message")

        creator.goto(base + group_url)
        creator.click("#moderate")
        creator.wait_for_url("**/moderate")
        creator.screenshot(path=str(tmp_path / "requests.png"), full_page=True)
        creator.click("tr[data-username=member] button:has-text('Accept')")
        assert creator.text_content("#message") == "Accepted."

        tabby = make_doc(member, title="Tabby on the sofa")
        secret = make_doc(member, title="My private cat", is_public=False)
        token = token_for(member, doc="write")
        added = api(base, api_key, "group.docs.add", auth_token=token, group_id=group.id,
                    doc_id=f"{tabby.id},{secret.id}")
        assert (added["group"]["added"], added["group"]["pending"]) == ("2", "2")
        assert pool_ids(base, api_key, group.id) == []  # pending: not in the pool yet

        creator.goto(base + group_url + "/moderate")
        for doc in (tabby, secret):
            creator.click(f"#pending tr[data-doc-id='{doc.id}'] button:has-text('Accept')")
            assert creator.text_content("#message") == "Accepted."
        assert pool_ids(base, api_key, group.id) == [tabby.id]
        alice_token = token_for(Group.get_by_id(group.id).owner, doc="read")
        assert pool_ids(base, api_key, group.id, auth_token=alice_token) == [tabby.id]
        mine = pool_ids(base, api_key, group.id, auth_token=token_for(member, doc="read"))
        assert sorted(mine) == sorted([tabby.id, secret.id])

        creator.goto(base + group_url)
        assert creator.locator(f"#pool tr[data-doc-id='{tabby.id}']").count() == 1
        assert creator.locator(f"#pool tr[data-doc-id='{secret.id}']").count() == 0
        assert "My private cat" not in creator.content()
        creator.screenshot(path=str(tmp_path / "group-creator.png"), full_page=True)
        joiner.goto(base + group_url)
        assert joiner.locator(f"#pool tr[data-doc-id='{secret.id}']").count() == 1
        assert joiner.text_content("#members") == "2"
        joiner.screenshot(path=str(tmp_path / "group-member.png"), full_page=True)
    finally:
        creator_view.close()
        member_view.close()
    print("screenshots in", tmp_path)
