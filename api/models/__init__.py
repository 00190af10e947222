"""peewee models of the API's own domains, one module per domain; keys/ owns users and keys.

May import ``api.core`` (the permission table) and below; nothing above.
"""
