"""card-core accounts: customers, credit accounts and cards, and their state events.

Layers: `domain` (pure rules) · `tables` + `repository` (SQLAlchemy Core, one shard) ·
`services` (use cases, one shard transaction each) · `delivery` (outbox push + relay to the
ledger) · `api` (FastAPI entrypoint). See the package README for the event-delivery design.
"""
