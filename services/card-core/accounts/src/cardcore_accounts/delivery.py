"""Delivery of account and card state events to the ledger: synchronous push + outbox relay.

Why this shape:
- **Read-your-writes.** A teller who opens an account or activates a card expects the very next
  authorization to see it. So right after its transaction commits, the request that made the
  change pushes the new events to `POST {ledger_url}/internal/events` itself (2 s timeout) and
  marks them delivered on a 200. In the normal case the ledger knows before the client does.
- **Durability.** The events were written to the shard's `outbox` table in the same transaction
  as the change, so nothing is lost when the ledger is down, slow or the process dies between the
  commit and the push: the request still succeeds, and `OutboxRelay` (a thread started in the app
  lifespan) polls every shard's undelivered rows every ~200 ms and delivers them in write order,
  i.e. per aggregate in ascending version. It leaves events younger than 0.5 s to the request
  push that is normally in flight for them, which keeps duplicate deliveries rare. A dual write
  (DB + HTTP, no outbox) could not promise any of this; a broker would add a moving part that the
  ≤1 s propagation target does not need.
- **At-least-once, applied once.** A push and the relay (or two processes' relays) may deliver the
  same event twice or two versions out of order. Each event carries the aggregate's full state and
  its version, and the ledger applies it only when the version is newer than the one it holds, so
  redelivery and reordering are harmless (docs/CONTRACTS.md).

Delivered outbox rows are kept for OUTBOX_RETENTION (investigation, replay), then purged by the
relay.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterable

import httpx
import sqlalchemy as sa
import structlog

from cardcore_accounts import repository
from cardcore_kernel.db import ShardSet
from cardcore_kernel.observability import outbound_headers

PUSH_TIMEOUT_SECONDS = 2.0
RELAY_INTERVAL_SECONDS = 0.2
RELAY_MAX_BACKOFF_SECONDS = 1.0
RELAY_BATCH = 500
RELAY_GRACE_SECONDS = 0.5
# Delivered events are kept a while for investigation and replay, then purged.
OUTBOX_RETENTION = dt.timedelta(days=7)
PURGE_INTERVAL_SECONDS = 600.0

log = structlog.get_logger("cardcore.accounts.delivery")


class LedgerPublisher:
    """Posts outbox events to the ledger and marks them delivered once it answers 200."""

    def __init__(self, shards: ShardSet, ledger_url: str) -> None:
        self._shards = shards
        self._events_url = ledger_url.rstrip("/") + "/internal/events"
        self._client = httpx.Client(timeout=PUSH_TIMEOUT_SECONDS)

    def close(self) -> None:
        self._client.close()

    def push(self, shard: int, aggregate_ids: Iterable[str]) -> bool:
        """Deliver the undelivered events of these aggregates now; False if the ledger failed.

        Earlier undelivered versions of the same aggregates go along, oldest first, so a push
        never overtakes an event that is still waiting for the relay.
        """
        engine = self._shards.engine(shard)
        with engine.connect() as conn:
            events = repository.pending_events(conn, aggregate_ids)
        return self._deliver(engine, events)

    def deliver_pending(self, shard: int) -> tuple[int, bool]:
        """One relay pass over a shard: (events delivered, whether the ledger accepted).

        Events younger than RELAY_GRACE_SECONDS are left to the push of the request that wrote
        them, which is normally in flight; the relay is for the pushes that failed.
        """
        engine = self._shards.engine(shard)
        cutoff = repository.utcnow() - dt.timedelta(seconds=RELAY_GRACE_SECONDS)
        with engine.connect() as conn:
            events = repository.pending_events(conn, created_before=cutoff, limit=RELAY_BATCH)
        delivered = self._deliver(engine, events)
        return (len(events) if delivered else 0), delivered

    def _deliver(self, engine: sa.Engine, events: list[repository.Row]) -> bool:
        if not events:
            return True
        body = {"events": [repository.event_envelope(event) for event in events]}
        try:
            response = self._client.post(self._events_url, json=body, headers=outbound_headers())
        except httpx.HTTPError as exc:
            log.warning("ledger_unreachable", error=type(exc).__name__, pending=len(events))
            return False
        if response.status_code != 200:
            log.warning(
                "ledger_rejected_events",
                status=response.status_code,
                pending=len(events),
                body=response.text[:300],
            )
            return False
        with engine.begin() as conn:
            repository.mark_delivered(conn, [event["seq"] for event in events])
        return True


class OutboxRelay:
    """Background thread that drains every shard's outbox; backs off while the ledger is down."""

    def __init__(self, publisher: LedgerPublisher, shards: ShardSet) -> None:
        self._publisher = publisher
        self._shards = shards
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _purge(self) -> None:
        cutoff = repository.utcnow() - OUTBOX_RETENTION
        for shard, engine in self._shards.all():
            try:
                with engine.begin() as conn:
                    purged = repository.purge_delivered(conn, cutoff)
            except Exception as exc:  # retention must never stop delivery
                log.warning("outbox_purge_failed", shard=shard, error=type(exc).__name__)
                continue
            if purged:
                log.info("outbox_purged", shard=shard, events=purged)

    def _run(self) -> None:
        wait = RELAY_INTERVAL_SECONDS
        next_purge = time.monotonic()
        while not self._stop.wait(wait):
            if time.monotonic() >= next_purge:
                self._purge()
                next_purge = time.monotonic() + PURGE_INTERVAL_SECONDS
            healthy = True
            for shard in range(self._shards.count):
                try:
                    delivered, accepted = self._publisher.deliver_pending(shard)
                except Exception as exc:  # a shard that is down must not stop the others
                    log.warning("relay_shard_failed", shard=shard, error=type(exc).__name__)
                    healthy = False
                    continue
                healthy = healthy and accepted
                if delivered:
                    log.info("relay_delivered", shard=shard, events=delivered)
            wait = RELAY_INTERVAL_SECONDS if healthy else min(wait * 2, RELAY_MAX_BACKOFF_SECONDS)
