"""The method families; each module owns a ``MethodGroup``. Imported explicitly, not discovered."""

from __future__ import annotations

from api.methods import album, auth, doc, doc_social, reflection, test, upload, user
from api.registry import Registry

GROUPS = (test.group, reflection.group, auth.group, user.group, doc.group, album.group,
          doc_social.group, upload.group)


def build_registry() -> Registry:
    """The registry of every method this server answers."""
    return Registry.from_groups(GROUPS)
