"""`CutoverPlan`: what "move a bucket range from CCS to the core" means to the kernel's Switcher.

The sequence, its write-ahead record, the one-switch-per-bucket locks, abort-before-flip and
roll-forward-after-it all belong to `cardcore_kernel.switchover`; this module only says what
each step does for a legacy → core cutover:

- precheck: the change stream (`migrate sync`) is running and at most `max_lag` seconds behind;
  a fresh VDiff of the range (`cdc.vdiff`) is clean; the range is still routed to `legacy`.
- freeze / release: the gateway's frozen-bucket set, through its published store (every replica).
- drain: every gateway's `POST /admin/bucket-freezes/drain` (in-flight legacy writes reach 0).
- source_position: CCS's head after the drain (binlog ordinal, or the change log's last SEQ);
  no write for the range can lie after it.
- wait_applied: the stream is asked to stop at that position (`pause_at`) and the cutover waits
  until it has applied everything up to it (also an idle MariaDB stream reaches it at once).
- verify: the VDiff of the range at a position both sides reached: counts, balances to the fen,
  open holds, cards.
- flip: the range's buckets → pool `core` in the store, and every gateway has loaded it.
- after_flip: the stream goes on (its pause lifted); the range is the core's from now on.

Invariant relied on: while the range is frozen and drained nothing writes the range in CCS, so
a verify at any position ≥ the drained position compares the range's final legacy state.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from cardcore_kernel.switchover import BucketRange, ReleaseStats, VerifyOutcome
from cardcore_migration.cdc.source import open_source
from cardcore_migration.cdc.vdiff import VerifyError, verify_buckets
from cardcore_migration.cutover.gateways import Gateways
from cardcore_migration.schema import migration_cdc

LEGACY_POOL, CORE_POOL = "legacy", "core"
# Test hook (kill -9 at a step, the way a crash would): CARDCORE_CUTOVER_FAILPOINT=<step>
FAILPOINT_ENV = "CARDCORE_CUTOVER_FAILPOINT"


def failpoint(step: str) -> None:
    if os.environ.get(FAILPOINT_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class MigrationSide:
    """The migration's handles the plan needs: context, apply run, target shard sets, control."""

    ctx: Any
    run: Any
    accounts: Any
    ledger: Any
    control: sa.Engine


def cdc_state(control: sa.Engine, run_id: str) -> Any:
    with control.connect() as conn:
        return conn.execute(
            sa.select(migration_cdc).where(migration_cdc.c.run_id == run_id)
        ).first()


def set_pause(control: sa.Engine, run_id: str, pause_at: int | None) -> None:
    with control.begin() as conn:
        conn.execute(
            sa.update(migration_cdc)
            .where(migration_cdc.c.run_id == run_id)
            .values(pause_at=pause_at)
        )


@dataclass
class CutoverPlan:
    side: MigrationSide
    gateways: Gateways
    max_lag: float = 5.0
    verify_timeout: float = 30.0
    kind: str = "cutover"
    source: str = LEGACY_POOL
    target: str = CORE_POOL
    prechecked: dict[str, Any] = field(default_factory=dict)

    @property
    def _run_id(self) -> str:
        return str(self.side.run.run_id)

    # ---- before anything stops --------------------------------------------------------------
    def precheck(self, buckets: BucketRange) -> list[str]:
        failpoint("precheck")
        reasons: list[str] = []
        state = cdc_state(self.side.control, self._run_id)
        if state is None:
            return [f"run {self._run_id} has no change stream: start `cardcore migrate sync`"]
        if state.status not in ("running", "paused"):
            reasons.append(f"change data capture is not running ({state.status})")
        elif state.seconds_behind is not None and state.seconds_behind > self.max_lag:
            reasons.append(
                f"change data capture is {state.seconds_behind:.1f} s behind "
                f"(bound {self.max_lag:g} s)"
            )
        routes = self.gateways.routes()  # a bucket without CCS customers has no route: fine
        elsewhere = sorted(
            b for b in buckets.buckets() if routes.get(b, self.source) != self.source
        )
        if elsewhere:
            reasons.append(
                f"{len(elsewhere)} bucket(s) of {buckets} are not on `{self.source}` "
                f"(e.g. bucket {elsewhere[0]} is routed to `{routes[elsewhere[0]]}`)"
            )
        if reasons:
            return reasons
        try:
            result = self._verify(buckets)
        except VerifyError as exc:
            return [f"verify before the freeze failed: {exc}"]
        self.prechecked = {"verify_before": summary(result)}
        if not result["ok"]:
            reasons.append(f"the range's verify is not clean: {short(result)}")
        return reasons

    # ---- the freeze -------------------------------------------------------------------------
    def freeze(self, buckets: BucketRange, ttl: float) -> None:
        failpoint("freeze")
        self.gateways.freeze(buckets, True)

    def drain(self, buckets: BucketRange, timeout: float) -> bool:
        failpoint("drain")
        return self.gateways.drain(buckets, timeout)

    def source_position(self) -> str:
        failpoint("source_position")
        source = open_source(self.side.ctx.source, server_id=0)
        try:
            return str(source.head()[1])
        finally:
            source.close()

    def wait_applied(self, position: str, timeout: float) -> bool:
        failpoint("wait_applied")
        goal = int(position)
        control = self.side.control
        set_pause(control, self._run_id, goal)  # apply through it at once, hold what follows
        deadline = time.monotonic() + timeout
        while True:
            state = cdc_state(control, self._run_id)
            if state is not None and state.applied_position >= goal:
                return True
            if time.monotonic() >= deadline:
                set_pause(control, self._run_id, None)
                return False
            time.sleep(0.01)

    def verify(self, buckets: BucketRange, position: str) -> VerifyOutcome:
        failpoint("verify")
        result = self._verify(buckets)
        return VerifyOutcome(bool(result["ok"]), summary(result))

    def _verify(self, buckets: BucketRange) -> dict[str, Any]:
        s = self.side
        wanted = range(buckets.low, buckets.high + 1)
        return verify_buckets(
            s.ctx, s.run, s.accounts, s.ledger, s.control, wanted, timeout=self.verify_timeout
        )

    # ---- the commit point and after ---------------------------------------------------------
    def flip(self, buckets: BucketRange) -> None:
        failpoint("flip")
        version = self.gateways.assign(buckets, self.target)
        if not self.gateways.wait_loaded(version, timeout=10.0):
            raise RuntimeError(f"a gateway did not load routes version {version} within 10 s")

    def after_flip(self, buckets: BucketRange) -> None:
        failpoint("after_flip")
        set_pause(self.side.control, self._run_id, None)

    def release(self, buckets: BucketRange, to: str) -> ReleaseStats:
        failpoint("release")
        stats = self.gateways.hold_figures()
        self.gateways.freeze(buckets, False)
        state = cdc_state(self.side.control, self._run_id)
        if state is not None and state.pause_at is not None:
            set_pause(self.side.control, self._run_id, None)  # never leave the stream stopped
        return stats


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The verify result without its samples of matching rows (kept short for the record)."""
    tables = {
        name: {k: v for k, v in t.items() if k != "samples" or v}
        for name, t in result["tables"].items()
    }
    return {
        "ok": result["ok"],
        "position": result["position"],
        "tables": tables,
        "balance": result["balance"],
    }


def short(result: dict[str, Any]) -> str:
    bad = [
        f"{name}: {t['mismatched']} mismatched, {t['missing_in_core']} missing in core, "
        f"{t['missing_in_ccs']} missing in CCS"
        for name, t in result["tables"].items()
        if t["mismatched"] or t["missing_in_core"] or t["missing_in_ccs"]
    ]
    balance = result["balance"]
    if balance["ccs_fen"] != balance["core_fen"]:
        bad.append(f"balances CCS {balance['ccs_fen']} fen, core {balance['core_fen']} fen")
    return "; ".join(bad) or "journal mismatches"
