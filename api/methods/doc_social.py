"""What members put on a doc: ``doc.tags.*``, ``doc.notes.*``, ``doc.comments.*`` (spec §9, §10.4).

Every method first finds the doc through its visibility: a doc the caller may not see answers 1,
like a missing one. Who may add is the doc's perm level (``perm_tag`` for keywords and member tags,
``perm_tagme`` also lets members tag themselves, ``perm_comment`` for comments and notes; the
owner always may). Taking something off is for the doc's owner or whoever put it there (a tagged
member may also untag themselves).
Codes are the same across the family: 1 not found, 2 bad or missing argument, 3 not allowed.
"""

from __future__ import annotations

from typing import Any

from peewee import fn

from api.content.access import find_user, perm_allows, relation_to, visible_doc
from api.content.tags import add_tags, find_members, parse_keywords
from api.content.trees import note_tree, owner_tree, parse_extra, tag_tree
from api.core.context import Call
from api.core.errors import method_error
from api.core.ids import as_id
from api.core.paging import paging
from api.core.registry import MethodGroup
from api.formats.tree import Text
from api.methods.common import READ, WRITE, DocNotFound, InvalidArgument
from api.models.docs import Comment, Doc, Note, Tag
from keys.db import db
from keys.models import User

group = MethodGroup()


NoteNotFound = method_error(1, "Note not found", "The note ID is invalid or insufficient "
                                                 "permissions to view its document.")
CommentNotFound = method_error(1, "Comment not found", "The comment ID is invalid or insufficient "
                                                       "permissions to view its document.")
TagNotFound = method_error(2, "Tag not found", "The type is not keyword or member, or the doc "
                                               "has no such tag.")
NotAllowed = method_error(3, "Permission denied", "The document's permissions do not let you do "
                                                  "this.")
NotAPhoto = method_error(4, "Not a photo", "Notes can only be put on photos.")

PREVIEW_HELP = "1 to see the result without saving it."


def require(allowed: bool, what: str) -> None:
    """Raise 3 unless ``allowed``."""
    if not allowed:
        raise NotAllowed(what)


def may(call: Call, doc: Doc, level: int) -> bool:
    """Whether the caller passes one of the doc's perm levels."""
    return perm_allows(level, call.user, doc.owner_id, relation_to(doc.owner_id, call.user))


# --- tags --------------------------------------------------------------------------------------

def doc_tags(doc: Doc) -> list[Tag]:
    """A doc's tags in the order they were put on."""
    return list(Tag.select().where(Tag.doc == doc).order_by(Tag.id))


def tag_request(call: Call, doc: Doc, keywords: str, members: str) -> tuple[list[str], list[User],
                                                                          int]:
    """The keywords and members asked for, how many were asked, after the perm checks."""
    words = parse_keywords(keywords)
    refs = [ref for ref in members.split(",") if ref.strip()]
    users, _unknown = find_members(refs)
    by_tag = may(call, doc, doc.perm_tag)
    if words or any(user.id != call.user.id for user in users):
        require(by_tag, "perm_tag")
    if any(user.id == call.user.id for user in users):
        require(by_tag or may(call, doc, doc.perm_tagme), "perm_tagme")
    return words, users, len(words) + len(refs)


def put_tags(call: Call, doc: Doc, words: list[str], users: list[User]) -> list[Tag]:
    """Add the tags a doc lacks; the Tag rows that are new."""
    before = {tag.id for tag in Tag.select(Tag.id).where(Tag.doc == doc)}
    add_tags(doc, keywords=words, members=users, added_by=call.user, now=call.now())
    return [tag for tag in doc_tags(doc) if tag.id not in before]


@group.method("doc.tags.add", title="Add a tag to a document.", service="doc", token=True,
              sign=True, post=True, perms=WRITE, missing=DocNotFound, invalid=DocNotFound,
              errors=(InvalidArgument, NotAllowed),
              params={"doc_id": "The doc to tag.",
                      "keywords": 'Comma list of keywords; quote multi-word ones: '
                                  '"blue sky",sunset.',
                      "members": "Comma list of members, by id or username."},
              response='<tags added dropped><tag type id user_id tag/></tags>')
def tags_add(call: Call, doc_id: int, keywords: str = "", members: str = "") -> dict:
    """Tag a doc with keywords and members (perm_tag; yourself: perm_tagme); repeats are dropped."""
    doc = visible_doc(call, doc_id, DocNotFound)
    words, users, asked = tag_request(call, doc, keywords, members)
    if not asked:
        raise InvalidArgument("neither keywords nor members")
    with db.atomic():
        new = put_tags(call, doc, words, users)
    return {"tags": {"added": len(new), "dropped": asked - len(new),
                     "tag": [tag_tree(tag, doc) for tag in new]}}


@group.method("doc.tags.edit", title="Edit (in fact replace) the tags for a document owned by "
                                     "the calling user.", service="doc", token=True, sign=True,
              post=True, perms=WRITE, missing=DocNotFound, invalid=DocNotFound,
              errors=(NotAllowed,),
              params={"doc_id": "One of your docs.",
                      "keywords": 'The new keywords (quote multi-word ones); none removes all.',
                      "members": "The new member tags, by id or username; none removes all."},
              response='<tags added dropped><tag type id user_id tag/></tags>')
def tags_edit(call: Call, doc_id: int, keywords: str = "", members: str = "") -> dict:
    """Make the owner's doc carry exactly these tags: ``added`` new ones, ``dropped`` taken off."""
    doc = visible_doc(call, doc_id, DocNotFound)
    require(call.user.id == doc.owner_id, "only the owner edits the tag list")
    words, users, _asked = tag_request(call, doc, keywords, members)
    keep = {("keyword", word.lower()) for word in words} | {("member", str(u.id)) for u in users}
    with db.atomic():
        gone = [tag.id for tag in doc_tags(doc) if (tag.type, tag.norm) not in keep]
        if gone:
            Tag.delete().where(Tag.id.in_(gone)).execute()
        new = put_tags(call, doc, words, users)
    return {"tags": {"added": len(new), "dropped": len(gone),
                     "tag": [tag_tree(tag, doc) for tag in doc_tags(doc)]}}


@group.method("doc.tags.getList", title="Return the list of tags on a document.", service="doc",
              perms=READ, missing=DocNotFound, invalid=DocNotFound,
              params={"doc_id": "The doc."},
              response='<tags total><tag type id user_id tag added_at/></tags>')
def tags_get_list(call: Call, doc_id: int) -> dict:
    """Every tag on a doc the caller may see, oldest first."""
    doc = visible_doc(call, doc_id, DocNotFound)
    tags = [tag_tree(tag, doc, dated=True) for tag in doc_tags(doc)]
    return {"tags": {"total": len(tags), "tag": tags}}


@group.method("doc.tags.remove", title="Remove a tag from a document.", service="doc", token=True,
              sign=True, post=True, perms=WRITE, missing=DocNotFound, invalid=DocNotFound,
              errors=(TagNotFound, NotAllowed),
              params={"doc_id": "The doc.", "type": "keyword or member.",
                      "id": "A keyword's tag id (or its text); a member's user id or username."})
def tags_remove(call: Call, doc_id: int, type: str, id: str) -> dict:  # noqa: A002 (API names)
    """Take a tag off: the doc's owner, whoever added it, or the member it names may."""
    doc = visible_doc(call, doc_id, DocNotFound)
    if type == "keyword":
        tag_id = as_id(id)
        match = Tag.id == tag_id if tag_id is not None else Tag.norm == " ".join(id.split()).lower()
    elif type == "member":
        member = find_user(id)
        match = Tag.member == (member.id if member else 0)
    else:
        raise TagNotFound(f"type {type!r}")
    tag = Tag.select().where(Tag.doc == doc, Tag.type == type, match).first()
    if tag is None:
        raise TagNotFound(f"{type} {id!r}")
    require(call.user.id in (doc.owner_id, tag.added_by_id, tag.member_id), "not your tag")
    tag.delete_instance()
    return {}


# --- notes -------------------------------------------------------------------------------------

def note_box(note: Note, content: str, x: int, y: int, w: int, h: int) -> None:
    """Set a note's text and box: a box has a non-negative corner and a positive size, else 2."""
    if min(x, y) < 0 or min(w, h) <= 0 or not content.strip():
        raise InvalidArgument(f"box {x},{y},{w},{h}")
    note.content, note.x, note.y, note.w, note.h = content, x, y, w, h


def own_note(call: Call, note_id: int) -> tuple[Note, Doc]:
    """A note its author or the doc's owner may change: 1 if unseen, 3 if not theirs."""
    note = Note.get_or_none(Note.id == note_id)
    if note is None:
        raise NoteNotFound(f"note {note_id}")
    doc = visible_doc(call, note.doc_id, NoteNotFound)
    require(call.user.id in (note.author_id, doc.owner_id), "not your note")
    return note, doc


_BOX_HELP = "The box, in pixels of the 500 px thumbnail: left, top, width, height."
_NOTE_SHAPE = '<note note_id user_id posted_at [member_id membername] x y w h content>text</note>'


@group.method("doc.notes.add", title="Add a note to a photo.", service="doc", token=True,
              sign=True, post=True, perms=WRITE, missing=InvalidArgument, invalid=InvalidArgument,
              errors=(DocNotFound, NotAllowed, NotAPhoto),
              params={"doc_id": "The photo.", "content": "The note's text.",
                      "member_id": "A member the note points at (id or username).",
                      "x": _BOX_HELP, "y": _BOX_HELP, "w": _BOX_HELP, "h": _BOX_HELP,
                      "preview": PREVIEW_HELP},
              response=_NOTE_SHAPE)
def notes_add(call: Call, doc_id: int, content: str, member_id: str | None = None, *, x: int,
              y: int, w: int, h: int, preview: bool = False) -> dict:
    """Put a box with text on a photo (perm_comment decides who may)."""
    doc = visible_doc(call, doc_id, DocNotFound)
    if doc.media != "photo":
        raise NotAPhoto(f"doc {doc_id} is a {doc.media}")
    require(may(call, doc, doc.perm_comment), "perm_comment")
    member = find_user(member_id) if member_id else None
    if member_id and member is None:
        raise InvalidArgument(f"member {member_id!r}")
    note = Note(doc=doc, author=call.user, member=member, created_at=call.now())
    note_box(note, content, x, y, w, h)
    if not preview:
        note.save()
    return {"note": note_tree(note, posted_at=note.created_at)}


@group.method("doc.notes.edit", title="Edit a note on a photo.", service="doc", token=True,
              sign=True, post=True, perms=WRITE, missing=InvalidArgument, invalid=InvalidArgument,
              errors=(NoteNotFound, NotAllowed),
              params={"note_id": "The note.", "content": "The new text.",
                      "x": _BOX_HELP, "y": _BOX_HELP, "w": _BOX_HELP, "h": _BOX_HELP,
                      "preview": PREVIEW_HELP},
              response=_NOTE_SHAPE)
def notes_edit(call: Call, note_id: int, content: str, x: int, y: int, w: int, h: int,
               preview: bool = False) -> dict:
    """Change a note's text and box (its author or the doc's owner)."""
    note, _doc = own_note(call, note_id)
    note_box(note, content, x, y, w, h)
    if not preview:
        note.save()
    return {"note": note_tree(note, posted_at=note.created_at)}


@group.method("doc.notes.delete", title="Remove a note from a photo.", service="doc", token=True,
              sign=True, post=True, perms=WRITE, missing=NoteNotFound, invalid=NoteNotFound,
              errors=(NotAllowed,), params={"note_id": "The note."})
def notes_delete(call: Call, note_id: int) -> dict:
    """Remove a note (its author or the doc's owner)."""
    note, _doc = own_note(call, note_id)
    note.delete_instance()
    return {}


# --- comments ----------------------------------------------------------------------------------

def comment_link(call: Call, doc: Doc, comment_id: int) -> str:
    """The comment's anchor on the doc's page."""
    return f"{call.base_url}/doc/{doc.owner_id}/{doc.id}/comment/{comment_id}#comment{comment_id}"


def written_tree(call: Call, doc: Doc, comment: Comment) -> dict[str, Any]:
    """The comment a write method answers with (add, edit, reply)."""
    return {"parent_id": comment.parent_id, "comment_id": comment.id,
            "user_id": comment.author_id, "posted_at": comment.posted_at,
            "modified_at": comment.modified_at or None,
            "link": comment_link(call, doc, comment.id) if comment.id else None,
            "content": Text(comment.content)}


def read_tree(comment: Comment, extras: set[str]) -> dict[str, Any]:
    """A comment as the read methods show it; its ``author`` is joined in already."""
    return {"comment_id": comment.id, "parent_id": comment.parent_id,
            "user_id": comment.author.id, "username": comment.author.username,
            "posted_at": comment.posted_at, "modified_at": comment.modified_at or None,
            "owner": owner_tree(comment.author) if "owner" in extras else None,
            "content": Text(comment.content)}


def comment_with_doc(call: Call, comment_id: int) -> tuple[Comment, Doc]:
    """A comment on a doc the caller may see (author joined), else 1."""
    comment = (Comment
               .select(Comment, User)
               .join(User, on=(Comment.author == User.id))
               .where(Comment.id == comment_id)
               .first())
    if comment is None:
        raise CommentNotFound(f"comment {comment_id}")
    return comment, visible_doc(call, comment.doc_id, CommentNotFound)


def recount(doc: Doc) -> None:
    """Keep Doc.comments equal to the comment rows (replies included)."""
    total = Comment.select(fn.COUNT(Comment.id)).where(Comment.doc == doc)
    Doc.update(comments=total).where(Doc.id == doc.id).execute()


def post_comment(call: Call, doc: Doc, content: str, parent: Comment | None,
                 preview: bool) -> dict:
    """Write a comment or reply (perm_comment decides who may) and answer with it."""
    require(may(call, doc, doc.perm_comment), "perm_comment")
    if not content.strip():
        raise InvalidArgument("empty content")
    comment = Comment(doc=doc, author=call.user, parent=parent, content=content,
                      posted_at=call.now())
    if not preview:
        with db.atomic():
            comment.save()
            Doc.update(comments=Doc.comments + 1).where(Doc.id == doc.id).execute()
    return {"comment": written_tree(call, doc, comment)}


_WRITTEN_SHAPE = '<comment comment_id user_id posted_at link><content/></comment>'


@group.method("doc.comments.add", title="Comment on a document.", service="doc", token=True,
              sign=True, post=True, perms=WRITE, missing=InvalidArgument, invalid=DocNotFound,
              errors=(DocNotFound, NotAllowed),
              params={"doc_id": "The doc.", "content": "The comment.",
                      "preview": PREVIEW_HELP},
              response=_WRITTEN_SHAPE)
def comments_add(call: Call, doc_id: int, content: str, preview: bool = False) -> dict:
    """Comment on a doc the caller may see."""
    return post_comment(call, visible_doc(call, doc_id, DocNotFound), content, None, preview)


@group.method("doc.comments.reply", title="Reply to a comment on a document.", service="doc",
              token=True, sign=True, post=True, perms=WRITE, missing=InvalidArgument,
              invalid=CommentNotFound, errors=(CommentNotFound, NotAllowed),
              params={"comment_id": "The comment to answer.", "content": "The reply."},
              response=_WRITTEN_SHAPE.replace("<comment ", "<comment parent_id "))
def comments_reply(call: Call, comment_id: int, content: str) -> dict:
    """Answer a comment; the reply points at it with parent_id."""
    parent, doc = comment_with_doc(call, comment_id)
    return post_comment(call, doc, content, parent, False)


@group.method("doc.comments.edit", title="Edit a comment on a document.", service="doc",
              token=True, sign=True, post=True, perms=WRITE, missing=InvalidArgument,
              invalid=CommentNotFound, errors=(CommentNotFound, NotAllowed),
              params={"comment_id": "One of your comments.", "content": "The new text.",
                      "preview": PREVIEW_HELP},
              response=_WRITTEN_SHAPE.replace("posted_at", "posted_at modified_at"))
def comments_edit(call: Call, comment_id: int, content: str, preview: bool = False) -> dict:
    """Change the text of one of the caller's comments."""
    comment, doc = comment_with_doc(call, comment_id)
    require(comment.author_id == call.user.id, "only the author edits a comment")
    if not content.strip():
        raise InvalidArgument("empty content")
    comment.content, comment.modified_at = content, call.now()
    if not preview:
        comment.save()
    return {"comment": written_tree(call, doc, comment)}


@group.method("doc.comments.delete", title="Delete a comment on a document.", service="doc",
              token=True, sign=True, post=True, perms=WRITE, missing=CommentNotFound,
              invalid=CommentNotFound, errors=(NotAllowed,),
              params={"comment_id": "The comment; its replies go with it."})
def comments_delete(call: Call, comment_id: int) -> dict:
    """Delete a comment and its replies (its author or the doc's owner)."""
    comment, doc = comment_with_doc(call, comment_id)
    require(call.user.id in (comment.author_id, doc.owner_id), "not your comment")
    with db.atomic():
        comment.delete_instance()  # replies go by ON DELETE CASCADE
        recount(doc)
    return {}


@group.method("doc.comments.get", title="Return a comment on a document.", service="doc",
              perms=READ, missing=CommentNotFound, invalid=CommentNotFound,
              params={"comment_id": "The comment.", "extra": "owner: add the author's details."},
              response='<comment comment_id user_id username posted_at canreply canedit '
                       'candelete parent_id><content/><parent comment_id user_id username>'
                       '<content/></parent></comment>')
def comments_get(call: Call, comment_id: int, extra: str = "") -> dict:
    """One comment, what the caller may do with it, and the comment it answers."""
    comment, doc = comment_with_doc(call, comment_id)
    tree = read_tree(comment, parse_extra(extra, ("owner",)))
    user_id = call.user.id if call.user is not None else None
    tree.update({"canreply": may(call, doc, doc.perm_comment),
                 "canedit": user_id == comment.author_id,
                 "candelete": user_id in (comment.author_id, doc.owner_id)})
    if comment.parent_id is not None:
        parent, _doc = comment_with_doc(call, comment.parent_id)
        tree["parent"] = {"comment_id": parent.id, "user_id": parent.author.id,
                          "username": parent.author.username, "content": Text(parent.content)}
    return {"comment": tree}


@group.method("doc.comments.getList", title="Return the comments on a document.", service="doc",
              perms=READ, missing=DocNotFound, invalid=InvalidArgument,
              errors=(InvalidArgument,),
              params={"doc_id": "The doc.", "extra": "owner: add each author's details.",
                      "per_page": "Comments per page: 100 by default, at most 100.",
                      "page": "The page, from 1."},
              response='<comments doc_id total page pages per_page count>'
                       '<comment comment_id parent_id user_id username posted_at modified_at>'
                       '<content/></comment></comments>')
def comments_get_list(call: Call, doc_id: int, extra: str = "", per_page: int | None = None,
                      page: int | None = None) -> dict:
    """A doc's comments and replies, oldest first, authors joined: two queries a page."""
    doc = visible_doc(call, doc_id, DocNotFound)
    slice_ = paging(page, per_page, default=100, maximum=100)
    query = Comment.select().where(Comment.doc == doc)
    total = query.count()
    rows = slice_.apply(Comment
                        .select(Comment, User)
                        .join(User, on=(Comment.author == User.id))
                        .where(Comment.doc == doc)
                        .order_by(Comment.posted_at, Comment.id))
    extras = parse_extra(extra, ("owner",))
    items = [read_tree(comment, extras) for comment in rows]
    return {"comments": {"doc_id": doc.id, **slice_.attrs(total, len(items)), "comment": items}}

