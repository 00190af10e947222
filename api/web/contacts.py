"""``POST /home/<alias>/contact``: from another member's profile, a logged-in member adds them as
a contact, marks them friend and/or family, changes that, or removes them (issue 13 item 2).

A contact is the ``Relation`` row "the visitor counts the member as contact (family, friend)": the
row the family and friend visibility rules read (api/content/access.py). Saving is one upsert on
the (user, contact) unique index, so two saves at once leave one row holding the last one's marks.
Nobody is their own contact, and a closed account cannot be added (an existing row can still be
removed).
"""

from __future__ import annotations

from collections.abc import Mapping

import falcon

from api.content.access import find_member
from api.models.docs import Relation
from api.web.console import ConsolePage
from api.web.pages import BadRequest
from keys.models import User

UNKNOWN_MEMBER = "There is no member of that name."


def profile_path(member: User) -> str:
    """A member's profile page."""
    return f"/home/{member.username}"


def save_contact(user: User, contact: User, *, friend: bool, family: bool) -> None:
    """``user`` counts ``contact`` as a contact with these marks (added or changed)."""
    if contact.id == user.id:
        raise BadRequest("You cannot add yourself to your contacts.")
    if not contact.is_open:
        raise BadRequest("This member has closed their account and cannot be added.")
    (Relation
     .insert(user=user, contact=contact, is_friend=friend, is_family=family)
     .on_conflict(conflict_target=[Relation.user, Relation.contact],
                  update={Relation.is_friend: friend, Relation.is_family: family})
     .execute())


def remove_contact(user: User, contact: User) -> None:
    """``user`` no longer counts ``contact`` among their contacts (nothing when they did not)."""
    Relation.delete().where(Relation.user == user, Relation.contact == contact).execute()


def checked(form: Mapping[str, str], name: str) -> bool:
    """Whether a checkbox was sent ticked."""
    return form.get(name, "") not in ("", "0")


class ContactForm(ConsolePage):
    """The contact form of a profile: ``action`` save (with the ``friend`` and ``family``
    boxes) or remove; back to the profile after."""

    def on_post(self, req: falcon.Request, resp: falcon.Response, alias: str = "") -> None:
        self._guard(lambda req, resp: self.change(req, resp, alias), req, resp)

    def on_get(self, req: falcon.Request, resp: falcon.Response, alias: str = "") -> None:
        self._guard(self.get, req, resp)  # the 405 page

    def change(self, req: falcon.Request, resp: falcon.Response, alias: str) -> None:
        """Apply the form to the visitor's relation with ``alias``."""
        posted = self.pages.posted(req, resp)
        if posted is None:
            return
        user, form = posted
        contact = find_member(alias[:64])
        if contact is None:
            raise BadRequest(UNKNOWN_MEMBER, falcon.HTTP_404)
        action = form.get("action")
        if action == "save":
            save_contact(user, contact, friend=checked(form, "friend"),
                         family=checked(form, "family"))
        elif action == "remove":
            remove_contact(user, contact)
        else:
            raise BadRequest("Choose to save or to remove the contact.")
        self.pages.redirect(resp, profile_path(contact))
