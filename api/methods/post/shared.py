"""What the ``post.*`` modules share: the permissions they require, their errors and their
parameters. The trees they answer with are built in api/content/post_trees.py (the blog pages
show the same), their shapes written down in docs/protocol-choices.md, "Blog posts (issue 14)".
"""

from __future__ import annotations

from typing import Annotated

from api.core.errors import method_error

POST_READ = {"post": "read"}
POST_WRITE = {"post": "write"}
BLOG_READ = {"blog": "read"}
BLOG_WRITE = {"blog": "write"}

PostNotFound = method_error(1, "Post not found", "The post ID is invalid or insufficient "
                                                 "permissions to view this post.")
NotAllowed = method_error(3, "Permission denied", "The post's permissions do not let you do "
                                                  "this.")

PostId = Annotated[int, "The post ID."]
CallersPostId = Annotated[int, "The post ID (one of the caller's own)."]


def require(allowed: bool, what: str) -> None:
    """Raise 3 unless ``allowed``."""
    if not allowed:
        raise NotAllowed(what)
