"""``doc.notes.*`` (spec §9): boxes with text on a photo, added under ``perm_comment``; edited or
removed by their author or the doc's owner.
"""

from __future__ import annotations

from typing import Annotated

from api.content.access import find_open_member, visible_doc
from api.content.trees import note_tree
from api.core.context import Call
from api.core.errors import method_error
from api.core.registry import MethodGroup
from api.methods.common import WRITE, DocNotFound, InvalidArgument
from api.methods.doc.shared import NotAllowed, Preview, may, require
from api.models.docs import Doc, Note

group = MethodGroup()

NoteNotFound = method_error(1, "Note not found", "The note ID is invalid or insufficient "
                                                 "permissions to view its document.")

NotAPhoto = method_error(4, "Not a photo", "Notes can only be put on photos.")


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
    require(call.require_user().id in (note.author_id, doc.owner_id), "not your note")
    return note, doc


Box = Annotated[int, "The box, in pixels of the 500 px thumbnail: left, top, width, height."]
NoteId = Annotated[int, "The note."]
_NOTE_SHAPE = '<note note_id user_id posted_at [member_id membername] x y w h content>text</note>'


@group.method("doc.notes.add", title="Add a note to a photo.", service="doc", token=True,
              sign=True, post=True, perms=WRITE, missing=InvalidArgument, invalid=InvalidArgument,
              errors=(DocNotFound, NotAllowed, NotAPhoto),
              response=_NOTE_SHAPE)
def notes_add(call: Call, doc_id: Annotated[int, "The photo."],
              content: Annotated[str, "The note's text."],
              member_id: Annotated[str | None, "A member the note points at (id or "
                                               "username)."] = None, *,
              x: Box, y: Box, w: Box, h: Box, preview: Preview = False) -> dict:
    """Put a box with text on a photo (perm_comment decides who may)."""
    doc = visible_doc(call, doc_id, DocNotFound)
    if doc.media != "photo":
        raise NotAPhoto(f"doc {doc_id} is a {doc.media}")
    require(may(call, doc, doc.perm_comment), "perm_comment")
    member = find_open_member(member_id) if member_id else None
    if member_id and member is None:
        raise InvalidArgument(f"member {member_id!r}")
    note = Note(doc=doc, author=call.require_user(), member=member, created_at=call.now())
    note_box(note, content, x, y, w, h)
    if not preview:
        note.save()
    return {"note": note_tree(note, posted_at=note.created_at)}


@group.method("doc.notes.edit", title="Edit a note on a photo.", service="doc", token=True,
              sign=True, post=True, perms=WRITE, missing=InvalidArgument, invalid=InvalidArgument,
              errors=(NoteNotFound, NotAllowed),
              response=_NOTE_SHAPE)
def notes_edit(call: Call, note_id: NoteId, content: Annotated[str, "The new text."], x: Box,
               y: Box, w: Box, h: Box, preview: Preview = False) -> dict:
    """Change a note's text and box (its author or the doc's owner)."""
    note, _doc = own_note(call, note_id)
    note_box(note, content, x, y, w, h)
    if not preview:
        note.save()
    return {"note": note_tree(note, posted_at=note.created_at)}


@group.method("doc.notes.delete", title="Remove a note from a photo.", service="doc", token=True,
              sign=True, post=True, perms=WRITE, missing=NoteNotFound, invalid=NoteNotFound,
              errors=(NotAllowed,))
def notes_delete(call: Call, note_id: NoteId) -> dict:
    """Remove a note (its author or the doc's owner)."""
    note, _doc = own_note(call, note_id)
    note.delete_instance()
    return {}
