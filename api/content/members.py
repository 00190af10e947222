"""A member's card as user.get and the profile page show it (issue 13): how the viewer and the
member count each other, the member's counts as the viewer is shown them, and what a name a
member gives may hold."""

from __future__ import annotations

import unicodedata

from peewee import Expression

from api.content.access import safesurf_clause, visible_to
from api.core.errors import ApiError
from api.models.docs import Doc, Relation
from api.models.posts import Post
from keys.models import User


def relation(viewer: User | None, user: User) -> dict[str, bool] | None:
    """How ``viewer`` and ``user`` count each other, in one query (None without a viewer)."""
    if viewer is None:
        return None
    rows = {(row.user_id, row.contact_id): row for row in Relation
            .select()
            .where(((Relation.user == viewer) & (Relation.contact == user))
                   | ((Relation.user == user) & (Relation.contact == viewer)))}
    mine, theirs = rows.get((viewer.id, user.id)), rows.get((user.id, viewer.id))
    return {"isfamily": bool(mine and mine.is_family), "isfriend": bool(mine and mine.is_friend),
            "iscontact": mine is not None,
            "revfamily": bool(theirs and theirs.is_family),
            "revfriend": bool(theirs and theirs.is_friend), "revcontact": theirs is not None}


def shown_docs(viewer: User | None) -> Expression:
    """The docs ``viewer`` is shown by default: those they may see, up to the default safesurf
    level (moderate and adult ones hidden, but never the viewer's own), as every list without a
    ``safesurf`` parameter and the profile page's own list."""
    return visible_to(Doc, viewer) & safesurf_clause(viewer, None, ApiError)


def counts(user: User, viewer: User | None, post_viewer: User | None) -> dict[str, int]:
    """``<count docs posts network/>``: the member's docs ``viewer`` is shown (``shown_docs``),
    their posts ``post_viewer`` may see (a token reads posts under blog:read or post:read, docs
    under doc:read), and every member they count in their network (three queries)."""
    docs = Doc.select().where(Doc.owner == user, shown_docs(viewer)).count()
    posts = Post.select().where(Post.owner == user, visible_to(Post, post_viewer)).count()
    network = Relation.select().where(Relation.user == user).count()
    return {"docs": docs, "posts": posts, "network": network}


# Besides C0 and C1 controls (category Cc) and the line and paragraph separators (Zl, Zp), the
# marks that reorder the text after them (a name holding one would turn the words around it on
# every page that shows it) and the invisible ones that make two names look alike. The zero-width
# joiner and non-joiner stay: Persian and Indic names and emoji sequences need them.
_INVISIBLE_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
                                "\u200e\u200f\u061c\u200b\u2060\ufeff")
_CONTROL_CATEGORIES = frozenset(("Cc", "Zl", "Zp"))


def has_control_characters(text: str) -> bool:
    """Whether ``text`` (a real name, a town) holds a control character (U+0000-U+001F, U+007F,
    U+0080-U+009F: line breaks, escapes), a line or paragraph separator (U+2028, U+2029), a
    bidirectional override, isolate or mark, or an invisible space (U+200B, U+2060, U+FEFF)."""
    return any(unicodedata.category(char) in _CONTROL_CATEGORIES or char in _INVISIBLE_CONTROLS
               for char in text)
