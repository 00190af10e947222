"""The blog pages (issue 14): ``/blog/<alias>`` lists a member's posts, ``/blog/<alias>/<post_id>``
shows one to whoever may see it; a logged-in member writes (``/posts/new``), edits
(``/posts/<id>/edit``) and deletes (``/posts/<id>/delete``) their own, and faves another's
(``/posts/<id>/fave``).

What a page shows is the answer of the API method that reads the same thing (post.getList,
post.get, post.comments.getList), called through the visitor's eyes, so a page never shows what
the API would hide. A post's text is shown through ``render_body`` (api/content/posts.py), the one
place that turns its markup into HTML; everything else goes through jinja2's autoescaping. Every
form carries the pages' CSRF token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import falcon
from markupsafe import Markup

from api.content.access import find_open_member
from api.content.faves import add_fave, remove_fave
from api.content.post_trees import COMMENTS_PAGE, POSTS_PAGE, blog_page, comments_page, post_tree
from api.content.posts import (
    attach_docs,
    attached_doc_ids,
    own_doc_ids,
    owned_post,
    post_problem,
    visible_post,
)
from api.content.trees import DEFAULT_THUMBSIZE
from api.core.context import Call, Grant
from api.core.errors import ApiError
from api.core.ids import as_id
from api.models.docs import share_flags, share_level
from api.models.posts import BODY_CHARS, MAX_POST_DOCS, TITLE_CHARS, Post
from api.web.console import ConsolePage
from api.web.home import base_url
from api.web.pages import BadRequest, Pages, read_form
from keys.db import db
from keys.models import User

NEW_POST = "/posts/new"
NO_SUCH_POST = "This post does not exist, or you may not see it."
SHARES = ((4, "Public"), (3, "Friends and family"), (2, "Friends"), (1, "Family"),
          (0, "Only you"))
COMMENT_LEVELS = ((5, "Everybody"), (4, "Your contacts"), (3, "Friends and family"),
                  (2, "Friends"), (1, "Family"), (0, "Only you"))
_VIEWER_GRANT = {"doc": "read", "blog": "read", "post": "read"}
# A post's form at its bounds in its worst encoding: every character of the title and the text
# four UTF-8 bytes, each sent as three (%XX), and room for the other fields.
POST_FORM_BYTES = 12 * (TITLE_CHARS + BODY_CHARS) + 4096
TOO_LONG = (f"This post is too long to be sent: its text may have at most {BODY_CHARS:,} "
            f"characters and its title {TITLE_CHARS}.")


def reader_call(pages: Pages, req: falcon.Request, viewer: User | None) -> Call:
    """A page view as an API call sees it: the visitor's eyes on posts and documents, as a
    token granting blog, post and doc read would (anonymous without a session)."""
    grant = Grant(token_id=0, user=viewer, permissions=_VIEWER_GRANT) if viewer else None
    return Call(ctx=pages.ctx, method="", key=None, grant=grant,
                client_addr=req.remote_addr or "", http_method=req.method, params={}, files={},
                base_url=base_url(pages, req))


def _as_id(raw: str) -> int:
    """A post id from the path; anything else is a missing post."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10:
        raise BadRequest(NO_SUCH_POST, falcon.HTTP_404)
    return int(raw)


class Blog(ConsolePage):
    """``/blog/<alias>``: a member's posts the visitor may see, newest first."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, alias: str = "") -> None:
        self._guard(lambda req, resp: self.show(req, resp, alias), req, resp)

    def show(self, req: falcon.Request, resp: falcon.Response, alias: str) -> None:
        member = find_open_member(alias[:64])
        if member is None:
            raise BadRequest("There is no such member.", falcon.HTTP_404)
        viewer = self.pages.user(req)
        page = req.get_param_as_int("page", min_value=1, max_value=100_000) or 1
        posts = blog_page(reader_call(self.pages, req, viewer), member,
                          POSTS_PAGE.page(page, None))["posts"]
        self.pages.render(resp, "post_list.html", user=viewer, member=member, posts=posts,
                          title=f"{member.username}'s blog",
                          own=viewer is not None and viewer.id == member.id)


class PostPage(ConsolePage):
    """``/blog/<alias>/<post_id>``: one post, its documents and comments (a visit when another
    logged-in member reads it, as post.get counts one)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, alias: str = "",
               post_id: str = "") -> None:
        self._guard(lambda req, resp: self.show(req, resp, alias, post_id), req, resp)

    def show(self, req: falcon.Request, resp: falcon.Response, alias: str, post_id: str) -> None:
        viewer = self.pages.user(req)
        call = reader_call(self.pages, req, viewer)
        try:
            row = visible_post(call, _as_id(post_id), ApiError)
        except ApiError:
            raise BadRequest(NO_SUCH_POST, falcon.HTTP_404) from None
        if row.owner.username != alias:
            raise BadRequest(NO_SUCH_POST, falcon.HTTP_404)
        post = post_tree(call, row, DEFAULT_THUMBSIZE)  # its <content>: render_body's, made once
        comments = comments_page(row, COMMENTS_PAGE.page(None, None), set())["comments"]
        self.pages.render(resp, "post_view.html", user=viewer, post=post,
                          body=Markup(post["content"]), comments=comments,
                          title=post["title"], csrf_token=self.csrf_token(req) if viewer else "")
        # the attached documents' thumbnails, from this site or its public URL
        images = " ".join(["'self'", self.pages.ctx.settings.public_url.rstrip("/")]).strip()
        resp.set_header("Content-Security-Policy", f"default-src 'none'; img-src {images}; "
                        "style-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
                        "form-action 'self'")


class PostForm(ConsolePage):
    """``/posts/new`` and ``/posts/<id>/edit``: a post's title, text, sharing, comment
    permission and attached documents (ids of the member's own)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, post_id: str = "") -> None:
        self._guard(lambda req, resp: self.edit(req, resp, post_id), req, resp)

    def on_post(self, req: falcon.Request, resp: falcon.Response, post_id: str = "") -> None:
        self._guard(lambda req, resp: self.save(req, resp, post_id), req, resp)

    def edit(self, req: falcon.Request, resp: falcon.Response, post_id: str) -> None:
        user = self.member(req, resp)
        if user is None:
            return
        post = self.own(user, post_id)
        form = {"title": "", "body": "", "share": "4", "perm_comment": "5", "docs": ""}
        if post is not None:
            form = {"title": post.title, "body": post.body,
                    "share": str(share_level(post.is_public, post.is_family, post.is_friend)),
                    "perm_comment": str(post.perm_comment),
                    "docs": ", ".join(map(str, attached_doc_ids(post)))}
        self.show(req, resp, user, post, form)

    def own(self, user: User, post_id: str) -> Post | None:
        """The member's post being edited (None for a new one); another's is a 404."""
        if not post_id:
            return None
        try:
            return owned_post(user, _as_id(post_id), ApiError)
        except ApiError:
            raise BadRequest(NO_SUCH_POST, falcon.HTTP_404) from None

    def show(self, req: falcon.Request, resp: falcon.Response, user: User, post: Post | None,
             form: Mapping[str, str], *, error: str = "",
             status: str = falcon.HTTP_200) -> None:
        self.pages.render(resp, "post_form.html", status=status, user=user, post=post,
                          form=form, error=error, shares=SHARES, levels=COMMENT_LEVELS,
                          title="Edit your post" if post else "Write a post",
                          limits={"title": TITLE_CHARS, "body": BODY_CHARS,
                                  "docs": MAX_POST_DOCS},
                          csrf_token=self.csrf_token(req))

    def save(self, req: falcon.Request, resp: falcon.Response, post_id: str) -> None:
        posted = self.pages.posted(req, resp, read_form(req, POST_FORM_BYTES, TOO_LONG))
        if posted is None:
            return
        user, form = posted
        fields = {name: form.get(name, "") for name in ("title", "body", "share",
                                                        "perm_comment", "docs")}
        with db.atomic():
            post = self.own(user, post_id)
            try:
                values, doc_ids = _post_values(user, fields)
            except ValueError as refused:
                return self.show(req, resp, user, post, fields, error=str(refused),
                                 status=falcon.HTTP_400)
            now = self.pages.now()
            if post is None:
                post = Post.create(owner=user, created_at=now, posted_at=now, modified_at=now,
                                   **values)
            else:
                Post.update(**values, modified_at=now).where(Post.id == post.id).execute()
            attach_docs(post, doc_ids)
        self.pages.redirect(resp, f"/blog/{user.username}/{post.id}")


def _choice(raw: str, choices: tuple[tuple[int, str], ...]) -> int:
    """The number of one of a select's ``choices``, or -1."""
    return next((value for value, _label in choices if str(value) == raw), -1)


def _post_values(user: User, form: Mapping[str, str]) -> tuple[dict[str, Any], list[int]]:
    """The columns and attached documents a form asks for; ValueError says what is wrong."""
    # A browser sends a line break as CR LF; its maxlength counted one character.
    title, body = form["title"].strip(), form["body"].replace("\r\n", "\n")
    share = _choice(form["share"], SHARES)
    level = _choice(form["perm_comment"], COMMENT_LEVELS)
    problem = post_problem(title, body, level) or ("Choose who may see the post."
                                                   if share < 0 else "")
    if problem:
        raise ValueError(problem)
    wanted: list[int] = []
    for part in filter(str.strip, form["docs"].split(",")):
        doc_id = as_id(part)
        if doc_id is None:
            raise ValueError("Documents: give their ids, separated by commas.")
        wanted.append(doc_id)
    if len(wanted) > MAX_POST_DOCS:
        raise ValueError(f"At most {MAX_POST_DOCS} documents can be attached to a post.")
    mine = own_doc_ids(user, wanted)
    strangers = [doc_id for doc_id in wanted if doc_id not in mine]
    if strangers:
        raise ValueError(f"Document {strangers[0]} is not one of yours.")
    return {"title": title, "body": body, "perm_comment": level, **share_flags(share)}, mine


class PostAction(ConsolePage):
    """A button posted about one post (``/posts/<id>/<action>``): the logged-in member, the
    form's CSRF token, then ``act``; a GET is the 405 page."""

    def on_post(self, req: falcon.Request, resp: falcon.Response, post_id: str = "") -> None:
        self._guard(lambda req, resp: self.run(req, resp, post_id), req, resp)

    def on_get(self, req: falcon.Request, resp: falcon.Response, post_id: str = "") -> None:
        self._guard(self.get, req, resp)

    def run(self, req: falcon.Request, resp: falcon.Response, post_id: str) -> None:
        posted = self.pages.posted(req, resp)
        if posted is None:
            return
        user, form = posted
        with db.atomic():
            location = self.act(req, user, _as_id(post_id), form)
        self.pages.redirect(resp, location)

    def act(self, req: falcon.Request, user: User, post_id: int,
            form: Mapping[str, str]) -> str:
        """Do it (in one transaction); where to go next."""
        raise NotImplementedError


class DeletePost(PostAction):
    """``/posts/<id>/delete``: the member deletes one of their posts (its comments, faves and
    visits go with it)."""

    def act(self, req: falcon.Request, user: User, post_id: int,
            form: Mapping[str, str]) -> str:
        Post.delete().where(Post.id == post_id, Post.owner == user.id).execute()
        return f"/blog/{user.username}"


class FavePost(PostAction):
    """``/posts/<id>/fave``: another member's post faved (``fave=1``) or no longer (``0``)."""

    def act(self, req: falcon.Request, user: User, post_id: int,
            form: Mapping[str, str]) -> str:
        try:
            post = visible_post(reader_call(self.pages, req, user), post_id, ApiError)
        except ApiError:
            raise BadRequest(NO_SUCH_POST, falcon.HTTP_404) from None
        if post.owner_id != user.id:
            if form.get("fave") == "1":
                add_fave(post, user, self.pages.now())
            else:
                remove_fave(post, user)
        return f"/blog/{post.owner.username}/{post.id}"


def add_routes(app: falcon.App, pages: Pages) -> None:
    """Mount the blog pages and the post forms."""
    app.add_route("/blog/{alias}", Blog(pages))
    app.add_route("/blog/{alias}/{post_id}", PostPage(pages))
    app.add_route(NEW_POST, PostForm(pages))
    app.add_route("/posts/{post_id}/edit", PostForm(pages))
    app.add_route("/posts/{post_id}/delete", DeletePost(pages))
    app.add_route("/posts/{post_id}/fave", FavePost(pages))
