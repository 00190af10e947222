"""A blog post written in Debian chromium (Playwright, never a downloaded browser) on a live
server: read back by post.get, invisible to others while private, commented and replied to
through the API once shared, found by post.search, and the comments shown on its page (issue 14).
"""

from __future__ import annotations

from ipernity import IpernityAPI
from ipernity.exceptions import APIRequestError

from keys import store
from tests.auth.conftest import chromium  # noqa: F401 (fixture)


def test_a_post_written_in_the_browser(chromium, live_server, api_key, token_for,  # noqa: F811
                                       tmp_path):
    ann = store.add_user("ann", "ann-password-long")
    bob = store.add_user("bob", "bob-password-long")
    url = live_server.base_url + "/api/"
    perms = {"blog": "write", "post": "write", "doc": "read"}
    as_ann = IpernityAPI(api_key.key, api_key.secret, token=token_for(ann, **perms), url=url)
    as_bob = IpernityAPI(api_key.key, api_key.secret, token=token_for(bob, **perms), url=url)
    anonymous = IpernityAPI(api_key.key, api_key.secret, url=url)
    problems: list[str] = []
    context = chromium.new_context(viewport={"width": 1100, "height": 900})
    try:
        page = context.new_page()
        # The site has no favicon: chromium's own request for one is no problem of these pages.
        page.on("console", lambda msg: msg.type == "error"
                and not msg.location.get("url", "").endswith("/favicon.ico")
                and problems.append(f"{msg.text} {msg.location}"))
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(live_server.base_url + "/login?next=/posts/new")
        page.fill("input[name=username]", "ann")
        page.fill("input[name=password]", "ann-password-long")
        page.click("button[type=submit]")
        page.wait_for_url("**/posts/new")
        page.fill("input[name=title]", "Walking the dunes")
        page.fill("textarea[name=body]", "A **windy** day on the dunes.\n\n"
                                         "Photos: [the album](https://example.org/album) "
                                         "<script>alert(1)</script>")
        page.select_option("select[name=share]", "0")  # only ann
        page.click("#post-form button[type=submit]")
        page.wait_for_url("**/blog/ann/*")
        post_id = page.url.rsplit("/", 1)[1]
        assert page.text_content("h1") == "Walking the dunes"
        assert page.inner_html("#body strong") == "windy"
        assert page.get_attribute("#body a", "href") == "https://example.org/album"
        assert page.locator("#body script").count() == 0

        post = as_ann.post.get(post_id=post_id)["post"]
        assert post["title"] == "Walking the dunes" and post["visibility"]["share"] == "0"
        assert "<strong>windy</strong>" in post["content"]
        # Private: nobody else sees it, by any method.
        for api in (as_bob, anonymous):
            assert _code(api, "post.get", post_id=post_id) == "1"
            assert api.post.search(text="dunes")["posts"]["post"] == []
        assert as_bob.post.getList(user_id=ann.id)["posts"]["post"] == []
        assert as_ann.post.search(text="dunes")["posts"]["total"] == "1"

        # Shared on the edit page: bob comments, ann replies, both through the API.
        page.goto(f"{live_server.base_url}/posts/{post_id}/edit")
        page.select_option("select[name=share]", "4")
        page.click("#post-form button[type=submit]")
        page.wait_for_url(f"**/blog/ann/{post_id}")
        comment = as_bob.post.comments.add(post_id=post_id, content="Lovely <b>place</b>")
        as_ann.post.comments.reply(comment_id=comment["comment"]["comment_id"],
                                   content="Thanks, Bob!")
        found = as_bob.post.search(text="windy dunes")["posts"]
        assert [p["post_id"] for p in found["post"]] == [post_id]
        listed = anonymous.post.comments.getList(post_id=post_id)["comments"]
        assert [c["content"] for c in listed["comment"]] == ["Lovely <b>place</b>",
                                                            "Thanks, Bob!"]
        page.reload()
        assert page.locator("#comments li").count() == 2
        assert page.locator("#comments b").count() == 0  # the comment's tag is text
        page.screenshot(path=str(tmp_path / "post.png"), full_page=True)
    finally:
        context.close()
    assert problems == []
    print("screenshot in", tmp_path / "post.png")


def _code(api: IpernityAPI, method: str, **params: str) -> str:
    """The API error code of a call PyIpernity raises for."""
    try:
        api.call(method, **params)
    except APIRequestError as error:
        return str(error.code)
    return "ok"
