"""Groups (issue 14): a group, its members (with requests and invitations) and its pool of
documents (with those waiting for a moderator). ``MODELS`` lists them for the schema.

A group's numbers (members, docs) are counted from these rows when shown, in one grouped query
per page, never kept in counter columns: a doc deleted or an account removed leaves its rows by
``ON DELETE CASCADE``, which a counter would miss. The unique (group, user) and (group, doc)
indexes keep one row each however many clients act at once.
"""

from __future__ import annotations

from peewee import BooleanField, CharField, ForeignKeyField, IntegerField, TextField

from api.models.docs import Doc
from keys.db import BaseModel, IdField
from keys.models import User, now

ACCESS_MODES = ("open", "moderated", "invitation")  # who may join: anyone, on request, invited
ROLES = ("admin", "moderator", "member")
STATES = ("member", "requested", "invited")

# Beside each foreign key ``x`` peewee adds ``x_id``, the raw column value; the bare annotations
# (``owner_id: int``) only declare its type for the checker and create nothing.


class Group(BaseModel):
    """A group members create on a page; ``is_public`` groups are seen by everyone, others by
    their members and invited members only."""

    id = IdField()
    owner = ForeignKeyField(User, backref="+", on_delete="CASCADE")
    owner_id: int
    title = CharField(max_length=128)
    description = TextField(default="")
    lang = CharField(max_length=8, default="en")
    access = CharField(max_length=12, default="open")  # ACCESS_MODES
    is_public = BooleanField(default=True)
    created_at = IntegerField(default=now)
    last_doc_at = IntegerField(default=0)

    class Meta:
        table_name = "groups"
        indexes = ((("is_public", "created_at"), False), (("is_public", "last_doc_at"), False),
                   (("lang", "created_at"), False))


class GroupMember(BaseModel):
    """``user`` in ``group``: a member (with a role), or asking to join, or invited."""

    id = IdField()
    group = ForeignKeyField(Group, backref="+", on_delete="CASCADE")
    group_id: int
    user = ForeignKeyField(User, backref="+", on_delete="CASCADE")
    user_id: int
    role = CharField(max_length=10, default="member")  # ROLES
    state = CharField(max_length=10, default="member")  # STATES
    joined_at = IntegerField(default=0)  # when the state became ``member``
    visited_at = IntegerField(default=0)  # the member's latest group.get
    asked_at = IntegerField(default=now)  # when the request or invitation was made

    class Meta:
        table_name = "group_members"
        indexes = ((("group", "user"), True), (("user", "state"), False),
                   (("group", "state", "asked_at"), False))


class GroupDoc(BaseModel):
    """``doc`` in ``group``'s pool, or waiting for a moderator (``pending``)."""

    id = IdField()
    group = ForeignKeyField(Group, backref="+", on_delete="CASCADE")
    group_id: int
    doc = ForeignKeyField(Doc, backref="+", on_delete="CASCADE")
    doc_id: int
    added_by = ForeignKeyField(User, backref="+", on_delete="CASCADE")
    added_by_id: int
    pending = BooleanField(default=False)
    added_at = IntegerField(default=now)  # when it entered the pool (or was submitted)

    class Meta:
        table_name = "group_docs"
        indexes = ((("group", "doc"), True), (("group", "pending", "added_at", "id"), False),
                   (("doc", "pending"), False))


MODELS = (Group, GroupMember, GroupDoc)
