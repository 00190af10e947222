"""peewee models of the API's own domains, one module per domain; keys/ owns users and keys."""
