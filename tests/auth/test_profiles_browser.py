"""Issue 13's acceptance in Debian chromium (Playwright, never a downloaded browser) over a live
waitress server: two members sign up; the first uploads an icon and adds the second as a friend
on the second's profile; a friends-only document of the first then shows for the second in doc.get,
doc.search and network.docs.getRecent, and stays hidden from a third member and anonymous calls;
the profile shows the uploaded icon."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from api.models.docs import Doc, Relation
from keys import store
from keys.models import User

PASSWORD = "a-long-password"


def sign_up(context: Any, base: str, username: str, realname: str) -> Any:
    """A new member through the sign-up page, logged in when it returns."""
    page = context.new_page()
    page.goto(base + "/signup")
    page.fill("input[name=username]", username)
    page.fill("input[name=realname]", realname)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/apps/authorized")
    assert page.text_content("#who") == username
    return page


def loaded_width(page: Any, selector: str) -> int:
    """The natural width of a picture the page shows (0: not loaded, e.g. refused by the CSP)."""
    return int(page.eval_on_selector(selector, "img => img.complete ? img.naturalWidth : 0"))


def portrait(path: Any) -> None:
    """A 240 x 320 picture: a blue top and an orange bottom around a white middle band."""
    image = Image.new("RGB", (240, 320), (30, 80, 200))
    image.paste((250, 250, 250), (0, 110, 240, 210))
    image.paste((240, 140, 20), (0, 210, 240, 320))
    image.save(path, "PNG")


def test_icon_contacts_and_a_friends_only_doc(chromium, live_server, call, token_for, tmp_path):
    base = live_server.base_url
    problems: list[str] = []
    contexts = [chromium.new_context(viewport={"width": 1100, "height": 800}) for _ in range(2)]
    try:
        for context in contexts:  # the site has no favicon: chromium's ask for one is no fault
            context.on("console", lambda msg: msg.type in ("error", "warning")
                       and not msg.location.get("url", "").endswith("/favicon.ico")
                       and problems.append(f"{msg.type}: {msg.text} {msg.location}"))
        first = sign_up(contexts[0], base, "alice", "Alice Liddell")
        second = sign_up(contexts[1], base, "bob", "Bob Builder")
        alice, bob = User.get(User.username == "alice"), User.get(User.username == "bob")

        # The first member uploads an icon on the settings page.
        first.click("a[href='/home/alice']")
        first.wait_for_url("**/home/alice")
        first.click("#edit")
        first.wait_for_url("**/settings/profile")
        assert "/media/icons/default.png" in first.get_attribute("#icon-100", "src")
        picture = tmp_path / "me.png"
        portrait(picture)
        first.set_input_files("input[name=icon]", str(picture))
        first.click("#upload-icon")
        first.wait_for_url("**/settings/profile")
        secret = User.get_by_id(alice.id).icon_secret
        assert secret and f"/media/icons/{alice.id}.{secret}.100.jpg" in first.get_attribute(
            "#icon-100", "src")
        assert loaded_width(first, "#icon-100") == 100 and loaded_width(first, "#icon-48") == 48
        first.fill("input[name=town]", "Oxford")
        first.fill("input[name=country]", "England")
        first.click("#save-details")
        first.wait_for_url("**/settings/profile")
        first.screenshot(path=str(tmp_path / "settings.png"), full_page=True)

        # ... and adds the second as a friend from the second's profile.
        first.goto(base + "/home/bob")
        assert "bob is not one of your contacts." in first.text_content("#relation")
        first.check("input[name=friend]")
        first.click("#save-contact")
        first.wait_for_url("**/home/bob")
        assert "one of your contacts, as a friend." in first.text_content("#relation")
        first.screenshot(path=str(tmp_path / "contact.png"), full_page=True)

        # A friends-only document of the first, uploaded through the API.
        photo = io.BytesIO()
        Image.new("RGB", (320, 240), (40, 160, 90)).save(photo, "JPEG")
        sent = call("upload.file", token=token_for(alice, doc="write"),
                    files={"file": ("party.jpg", photo.getvalue())}, title="Garden party",
                    is_public="0", is_friend="1", **{"async": "0"})
        assert sent["api"]["status"] == "ok", sent
        doc = Doc.get(Doc.owner == alice.id)
        assert (doc.is_public, doc.is_friend, doc.is_family) == (False, True, False)

        def sees(token: str | None) -> dict[str, bool]:
            got = call("doc.get", doc_id=doc.id, token=token)
            found = call("doc.search", text="garden", token=token)
            recent = call("network.docs.getRecent", token=token)
            return {"doc.get": got["api"]["status"] == "ok",
                    "doc.search": [d["doc_id"] for d in found["docs"]["doc"]] == [str(doc.id)],
                    "network.docs.getRecent": recent["api"]["status"] == "ok"
                    and str(doc.id) in [d["doc_id"] for d in recent["docs"]["doc"]]}

        friend = token_for(bob, doc="read", network="read")
        # network.docs.getRecent lists the docs of the members one counts as contacts: the
        # second member adds the first (a plain contact) on the first's profile.
        assert sees(friend) == {"doc.get": True, "doc.search": True,
                                "network.docs.getRecent": False}
        second.goto(base + "/home/alice")
        second.click("#save-contact")
        second.wait_for_url("**/home/alice")
        assert sees(friend) == {"doc.get": True, "doc.search": True,
                                "network.docs.getRecent": True}
        # A third member who counts the first as a contact still sees nothing of it.
        stranger = store.add_user("carol", PASSWORD, realname="Carol Third")
        Relation.create(user=stranger, contact=alice)
        assert sees(token_for(stranger, doc="read", network="read")) == {
            "doc.get": False, "doc.search": False, "network.docs.getRecent": False}
        assert sees(None) == {"doc.get": False, "doc.search": False,
                              "network.docs.getRecent": False}
        assert call("doc.get", doc_id=doc.id)["api"]["code"] == "1"

        # The second member sees the first's profile with the icon and the friends-only doc.
        assert second.text_content("h1") == "Alice Liddell"
        assert f"/media/icons/{alice.id}.{secret}.100.jpg" in second.get_attribute("#icon", "src")
        assert loaded_width(second, "#icon") == 100
        assert "Oxford, England" in second.text_content("#place")
        assert "alice counts you among their contacts." in second.text_content("#relation")
        thumb = f"#docs li[data-doc-id='{doc.id}'] img"
        assert loaded_width(second, thumb) == 75
        second.screenshot(path=str(tmp_path / "profile-as-friend.png"), full_page=True)
        # Anyone else sees the icon, not the document.
        third = chromium.new_context()
        try:
            page = third.new_page()
            page.goto(base + "/home/alice")
            assert loaded_width(page, "#icon") == 100
            assert page.query_selector(f"li[data-doc-id='{doc.id}']") is None
            assert page.text_content("#no-docs") == "No documents to show."
        finally:
            third.close()
    finally:
        for context in contexts:
            context.close()
    assert problems == []
    print("screenshots in", tmp_path)
