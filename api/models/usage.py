"""Usage statistics beside ``usage_counters`` (keys/models.py): latency histograms and the members
whose tokens called, both written in batches by ``api.runtime.usage.UsageRecorder``."""

from __future__ import annotations

from peewee import CharField, IntegerField

from keys.db import BaseModel, IdField


class UsageLatency(BaseModel):
    """Calls per key, method, hour, result code and latency bucket (api.runtime.latency.BOUNDS)."""

    id = IdField()
    api_key = CharField(max_length=32)
    method = CharField(max_length=64)
    hour = IntegerField()  # UNIX seconds // 3600
    code = IntegerField()  # 0 for success
    bucket = IntegerField()  # index into latency.BOUNDS; len(BOUNDS) is the overflow bucket
    calls = IntegerField(default=0)

    class Meta:
        table_name = "usage_latency"
        indexes = ((("api_key", "method", "hour", "code", "bucket"), True),
                   (("api_key", "hour"), False))


class UsageUser(BaseModel):
    """A member whose token called with a key on a day (distinct members per day)."""

    id = IdField()
    api_key = CharField(max_length=32)
    day = IntegerField()  # UNIX seconds // 86400
    user_id = IntegerField()

    class Meta:
        table_name = "usage_users"
        indexes = ((("api_key", "day", "user_id"), True),)


MODELS = (UsageLatency, UsageUser)
