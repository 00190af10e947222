"""The request log (issue 9 item 4): the newest failed calls of each key, for its owner's page.

Bounded per key (``Settings.request_log_bound``, 1000 by default); api/runtime/request_log.py
writes it in batches and trims each key in SQL after every flush, so the bound holds across
processes. Never a secret, a full token or a signature that could be replayed (see
docs/protocol-choices.md).
"""

from __future__ import annotations

from peewee import CharField, IntegerField, TextField

from keys.db import BaseModel, IdField


class RequestLogEntry(BaseModel):
    """One failed call of a known key."""

    id = IdField()
    api_key = CharField(max_length=64)
    at = IntegerField()  # UNIX seconds
    method = CharField(max_length=64)
    code = IntegerField()
    message = TextField()
    client_addr = CharField(max_length=64)
    format = CharField(max_length=16)
    # For a 105 only: the string the server signed, secret as <secret>, auth_token shortened,
    # and the api_sig the client sent (wrong by definition, so useless to anyone else).
    signed = TextField(default="")
    api_sig = CharField(max_length=64, default="")

    class Meta:
        table_name = "request_log"
        indexes = ((("api_key", "id"), False),)


MODELS = (RequestLogEntry,)
