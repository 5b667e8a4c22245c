"""Alembic revisions, oldest first. Each revision is frozen once released: never edit, add a new one."""
