"""The method families; each module owns a ``MethodGroup``. Imported explicitly, not discovered."""

from __future__ import annotations

from api.methods import album, auth, doc, doc_social, api_methods, test, upload, user
from api.core.registry import Registry

GROUPS = (test.group, api_methods.group, auth.group, user.group, doc.group, album.group,
          doc_social.group, upload.group)


def build_registry() -> Registry:
    """The registry of every method this server answers."""
    return Registry.from_groups(GROUPS)
