"""Alembic migrations of the edge store (script location for edge_store.migrate)."""
