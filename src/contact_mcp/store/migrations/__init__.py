"""Versioned schemas, one module per backend, applied at start-up before the server serves.

Each backend's module lists its migrations in order; version N is the schema after the first N have run, and the
database records the version it holds (SQLite: `PRAGMA user_version`). A database at an older version is migrated
forward in one transaction; one at a newer version than the code knows is a start-up `ConfigError` naming
CONTACT_MCP_DB (an older contact-mcp must not write a newer schema). Migrations are only ever appended: a released
version's statements never change, so every existing database reaches the same schema.
"""
