"""The database schema: every model, created on first start; later changes go through migrations."""

from __future__ import annotations

from api.models import accounts, docs, grants
from keys.db import db
from keys.models import MODELS as KEY_MODELS

# Each domain adds its models here (api/models/*.py); order matters for foreign keys.
ALL_MODELS = (*KEY_MODELS, *grants.MODELS, *docs.MODELS, *accounts.MODELS)


def create_schema() -> None:
    """Create the tables that do not exist yet (idempotent; run at every start)."""
    with db.connection_context():
        db.create_tables(ALL_MODELS, safe=True)

