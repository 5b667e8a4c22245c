"""Alembic environment and revisions of the state store schema (run through ``store.migrate``)."""
