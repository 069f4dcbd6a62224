"""Alembic revisions of the state store (shipped as package modules)."""
