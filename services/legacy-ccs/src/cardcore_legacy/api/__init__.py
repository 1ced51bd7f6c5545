"""HTTP entrypoints of the legacy front (`cardcore legacy serve`: `cardcore_legacy.api.app:app`)."""
