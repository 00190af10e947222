"""What runs beside the requests: usage counters, the access log, the periodic flusher they share,
the schema (ALL_MODELS) and its numbered migrations.

May import ``api.models``, ``api.core`` and below; nothing above.
"""
