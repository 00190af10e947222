"""The method families; each module owns a ``MethodGroup``. Imported explicitly, not discovered."""

from __future__ import annotations

from api.core.registry import Registry
from api.methods import album, api_methods, auth, doc, doc_social, test, upload, user

GROUPS = (test.group, api_methods.group, auth.group, user.group, doc.group, album.group,
          doc_social.group, upload.group)


def build_registry() -> Registry:
    """The registry of every method this server answers."""
    return Registry.from_groups(GROUPS)
