"""The database schema: every model, created on first start; later changes go through migrations."""

from __future__ import annotations

from api.models import accounts, docs, grants, groups, posts, request_log, usage
from api.runtime import migrations
from keys.db import db
from keys.models import MODELS as KEY_MODELS

# Each domain adds its models here (api/models/*.py); order matters for foreign keys.
ALL_MODELS = (*KEY_MODELS, *grants.MODELS, *docs.MODELS, *accounts.MODELS,
              *request_log.MODELS, *usage.MODELS, *groups.MODELS, *posts.MODELS)


def create_schema(*, migrate: bool = True) -> int:
    """Create a fresh database at the latest schema version, or migrate an older one (numbered
    steps in api/runtime/migrations.py); run at every start. Returns the version; raises
    ``migrations.SchemaTooNew`` on a database migrated by newer code. ``migrate`` False only
    checks: ``migrations.SchemaOutOfDate`` unless the schema is current."""
    with db.connection_context():
        return migrations.migrate(ALL_MODELS) if migrate else migrations.check_current()

