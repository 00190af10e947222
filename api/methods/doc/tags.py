"""``doc.tags.*`` (spec §9, §10.4): ``perm_tag`` lets a member add keyword and member tags,
``perm_tagme`` also lets members tag themselves; the owner always may. Taking a tag off is for the
doc's owner, whoever put it there, or the tagged member.
"""

from __future__ import annotations

from typing import Annotated

from api.content.access import find_open_member, visible_doc
from api.content.tags import add_tags, find_members, parse_keywords
from api.content.trees import tag_tree
from api.core.context import Call
from api.core.errors import method_error
from api.core.ids import as_id
from api.core.registry import MethodGroup
from api.methods.common import READ, WRITE, DocNotFound, InvalidArgument
from api.methods.doc.shared import NotAllowed, OwnDocId, TheDoc, may, require
from api.models.docs import Doc, Tag
from keys.db import db
from keys.models import User

group = MethodGroup()

TagNotFound = method_error(2, "Tag not found", "The type is not keyword or member, or the doc "
                                               "has no such tag.")


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
    caller = call.require_user()
    if words or any(user.id != caller.id for user in users):
        require(by_tag, "perm_tag")
    if any(user.id == caller.id for user in users):
        require(by_tag or may(call, doc, doc.perm_tagme), "perm_tagme")
    return words, users, len(words) + len(refs)


def put_tags(call: Call, doc: Doc, words: list[str], users: list[User]) -> list[Tag]:
    """Add the tags a doc lacks; the Tag rows that are new."""
    before = {tag.id for tag in Tag.select(Tag.id).where(Tag.doc == doc)}
    add_tags(doc, keywords=words, members=users, added_by=call.require_user(), now=call.now())
    return [tag for tag in doc_tags(doc) if tag.id not in before]


@group.method("doc.tags.add", title="Add a tag to a document.", service="doc", token=True,
              sign=True, post=True, perms=WRITE, missing=DocNotFound, invalid=DocNotFound,
              errors=(InvalidArgument, NotAllowed),
              response='<tags added dropped><tag type id user_id tag/></tags>')
def tags_add(call: Call, doc_id: Annotated[int, "The doc to tag."],
             keywords: Annotated[str, 'Comma list of keywords; quote multi-word ones: '
                                      '"blue sky",sunset.'] = "",
             members: Annotated[str, "Comma list of members, by id or username."] = "") -> dict:
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
              response='<tags added dropped><tag type id user_id tag/></tags>')
def tags_edit(call: Call, doc_id: OwnDocId,
              keywords: Annotated[str, "The new keywords (quote multi-word ones); none removes "
                                       "all."] = "",
              members: Annotated[str, "The new member tags, by id or username; none removes "
                                      "all."] = "") -> dict:
    """Make the owner's doc carry exactly these tags: ``added`` new ones, ``dropped`` taken off."""
    doc = visible_doc(call, doc_id, DocNotFound)
    require(call.require_user().id == doc.owner_id, "only the owner edits the tag list")
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
              response='<tags total><tag type id user_id tag added_at/></tags>')
def tags_get_list(call: Call, doc_id: TheDoc) -> dict:
    """Every tag on a doc the caller may see, oldest first."""
    doc = visible_doc(call, doc_id, DocNotFound)
    tags = [tag_tree(tag, doc, dated=True) for tag in doc_tags(doc)]
    return {"tags": {"total": len(tags), "tag": tags}}


@group.method("doc.tags.remove", title="Remove a tag from a document.", service="doc", token=True,
              sign=True, post=True, perms=WRITE, missing=DocNotFound, invalid=DocNotFound,
              errors=(TagNotFound, NotAllowed))
def tags_remove(call: Call, doc_id: TheDoc, type: Annotated[str, "keyword or member."],
                id: Annotated[str, "A keyword's tag id (or its text); a member's user id or "
                                   "username."]) -> dict:
    """Take a tag off: the doc's owner, whoever added it, or the member it names may."""
    doc = visible_doc(call, doc_id, DocNotFound)
    if type == "keyword":
        tag_id = as_id(id)
        match = Tag.id == tag_id if tag_id is not None else Tag.norm == " ".join(id.split()).lower()
    elif type == "member":
        member = find_open_member(id)
        match = Tag.member == (member.id if member else 0)
    else:
        raise TagNotFound(f"type {type!r}")
    tag = Tag.select().where(Tag.doc == doc, Tag.type == type, match).first()
    if tag is None:
        raise TagNotFound(f"{type} {id!r}")
    require(call.require_user().id in (doc.owner_id, tag.added_by_id, tag.member_id),
            "not your tag")
    tag.delete_instance()
    return {}
