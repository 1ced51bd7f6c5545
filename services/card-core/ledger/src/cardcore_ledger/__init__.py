"""card-core ledger: authorizations and holds, clearing, refunds, repayments and the journal.

The ledger owns money. It keeps its own copy of account and card state (fed by the accounts
service through `POST /internal/events`), so the authorization hot path is one short transaction
on one shard that never calls another service.
"""
