"""Alembic migrations of the state store (scripts located by path, never by the cwd)."""
