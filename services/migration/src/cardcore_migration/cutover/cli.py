"""`cardcore cutover init|run|status|abort`: every cutover command, in one place.

`init` is day zero (cardcore_legacy.cutover: CCS cards in the PAN directory, CCS buckets routed to
the `legacy` pool). `run` moves a bucket range to the core with the kernel's Switcher and this
package's CutoverPlan; `abort` ends an unfinished switch of a range before its flip (after the
flip it is finished instead); `status` shows every range (also `--json`). Exit codes: 0 done,
1 refused/aborted/failed (the message says why), 2 bad input.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cardcore_kernel.settings import get_settings
from cardcore_kernel.switchover import (
    DONE,
    ENDED,
    POST_FLIP,
    BucketRange,
    Switcher,
    SwitchError,
    SwitchRecord,
    switch_status,
)
from cardcore_legacy.ccs import store
from cardcore_legacy.cutover import LEGACY_POOL, cutover_init

cutover_app = typer.Typer(
    help="Cut-over of CCS customers to the core, range by range.", no_args_is_help=True
)
console = Console()
err = Console(stderr=True)

BucketsOption = Annotated[
    str, typer.Option("--buckets", help="Bucket range LO-HI (inclusive), e.g. 0-255.")
]
GatewayOption = Annotated[
    list[str] | None,
    typer.Option(
        "--gateway",
        help="A gateway's base URL (repeat for several); default CARDCORE_GATEWAY_URL.",
    ),
]


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/] {message}")
    return typer.Exit(code)


def parse_range(text: str) -> BucketRange:
    try:
        return BucketRange.parse(text)
    except ValueError as exc:
        raise fail(f"--buckets: {exc}", 2) from None


@cutover_app.command("init")
def init() -> None:
    """Day zero: register every CCS card in the PAN directory and route every CCS customer's
    bucket to the gateway's `legacy` pool. Idempotent."""
    get_settings.cache_clear()
    kernel = get_settings()
    started = time.monotonic()
    try:
        result = cutover_init(kernel)
    except store.SourceError as exc:
        raise fail(str(exc)) from None
    except Exception as exc:  # an operator command reports, it does not dump a traceback
        raise fail(f"cutover init failed: {type(exc).__name__}: {exc}"[:500]) from None
    console.print(
        f"PAN directory: {result.cards_registered:,} card(s) registered, "
        f"{result.cards_already:,} already there, {result.cards_skipped:,} skipped "
        f"(no CCS account or not a PAN), {result.pan_conflicts:,} conflict(s)"
    )
    console.print(
        f"bucket routes: {result.buckets_routed:,} of {result.buckets:,} CCS bucket(s) newly "
        f"routed to `{LEGACY_POOL}`, {result.buckets_elsewhere:,} already on another pool; "
        f"table version {result.routes_version}"
    )
    console.print(f"done in {time.monotonic() - started:.1f}s")
    if result.pan_conflicts:
        raise typer.Exit(1)


def _switcher(gateway: list[str] | None, max_lag: float) -> tuple[Switcher, Any]:
    """The Switcher over a CutoverPlan wired to this stack (migration side and gateways)."""
    from cardcore_kernel.db import control_engine
    from cardcore_migration.cli import _check_target, _prepare, settings
    from cardcore_migration.cli_cdc import _apply_run
    from cardcore_migration.cutover.gateways import Gateways
    from cardcore_migration.cutover.plan import CutoverPlan, MigrationSide

    config = settings()
    ctx = _prepare(config)
    run = _apply_run(ctx, None)
    accounts, ledger = _check_target(config, ctx)
    control = control_engine(config)
    gateways = Gateways(
        config, gateway or [config.gateway_url], os.environ.get("CARDCORE_GATEWAY_ADMIN_KEY")
    )
    plan = CutoverPlan(MigrationSide(ctx, run, accounts, ledger, control), gateways, max_lag)
    return Switcher(control, plan), plan


def report_of(record: SwitchRecord, plan: Any) -> dict[str, Any]:
    return {
        "switch_id": record.switch_id,
        "kind": record.kind,
        "buckets": record.buckets,
        "state": record.state,
        "reason": record.reason,
        "max_freeze_seconds": record.max_freeze,
        "freeze_seconds": record.freeze_seconds,
        "freeze_within_bound": (
            record.freeze_seconds is not None and record.freeze_seconds <= record.max_freeze
        ),
        "requests_held": record.detail.get("held_requests"),
        "longest_wait_ms": record.detail.get("longest_wait_ms"),
        "position": record.position,
        "verify": record.detail.get("verify"),
        "verify_before": getattr(plan, "prechecked", {}).get("verify_before"),
    }


def _finish(record: SwitchRecord, plan: Any, report: Path | None, verb: str) -> None:
    body = report_of(record, plan)
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(body, indent=2, default=str))
    freeze = "-" if record.freeze_seconds is None else f"{record.freeze_seconds:.3f} s"
    console.print(
        f"switch {record.switch_id} ({record.kind} {record.buckets}): {record.state}; "
        f"freeze {freeze} (bound {record.max_freeze:g} s), "
        f"{body['requests_held'] or 0} request(s) held, longest wait "
        f"{body['longest_wait_ms'] or 0} ms"
    )
    if record.state != DONE:
        raise fail(f"{verb} of buckets {record.buckets} {record.state}: {record.reason}")
    console.print(f"[green]✓[/] buckets {record.buckets} {verb} to {record.target}")


@cutover_app.command("run")
def run(
    buckets: BucketsOption,
    max_freeze: Annotated[
        float, typer.Option("--max-freeze", help="Seconds the range may stay frozen.")
    ] = 1.0,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write the JSON report here.")
    ] = None,
    gateway: GatewayOption = None,
    max_lag: Annotated[
        float, typer.Option("--max-lag", help="Refuse if CDC is more than this many s behind.")
    ] = 5.0,
) -> None:
    """Cut a bucket range over from CCS to the core: precheck, freeze, drain, catch up, verify,
    flip, release. An interrupted cutover of the same range is finished first."""
    wanted = parse_range(buckets)
    if max_freeze <= 0:
        raise fail("--max-freeze must be > 0", 2)
    switcher, plan = _switcher(gateway, max_lag)
    try:
        record = switcher.run(wanted, max_freeze=max_freeze)
    except SwitchError as exc:
        raise fail(str(exc)) from None
    _finish(record, plan, report, "cut over")


@cutover_app.command("abort")
def abort(buckets: BucketsOption, gateway: GatewayOption = None) -> None:
    """End the unfinished switch holding (part of) the range: aborted before its flip (routes
    unchanged, held requests back to the old side); past its flip it is finished instead."""
    wanted = parse_range(buckets)
    switcher, _plan = _switcher(gateway, 5.0)
    from cardcore_kernel.db import control_engine
    from cardcore_migration.cli import settings

    pending = [
        r
        for r in switch_status(control_engine(settings()))
        if r.state not in ENDED and r.range.overlaps(wanted)
    ]
    if not pending:
        console.print(f"no unfinished switch holds buckets {wanted}")
        return
    for record in pending:
        try:
            if record.state in POST_FLIP:
                ended = switcher.resume(record.switch_id)
            else:
                ended = switcher.abort(record.switch_id, "aborted by the operator")
        except SwitchError as exc:
            raise fail(str(exc)) from None
        console.print(
            f"switch {ended.switch_id} ({ended.kind} {ended.buckets}): {ended.state}"
            + (f" ({ended.reason})" if ended.reason else "")
        )


@cutover_app.command("status")
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Per range: where it is routed, its state, sync lag, last verify, last freeze."""
    from cardcore_migration.cli import settings
    from cardcore_migration.cutover.status import cutover_status

    try:
        result = cutover_status(settings())
    except Exception as exc:  # an operator command reports, it does not dump a traceback
        raise fail(f"cutover status failed: {type(exc).__name__}: {exc}"[:500]) from None
    if as_json:
        typer.echo(json.dumps(result, default=str, indent=2))
        return
    table = Table(
        "buckets", "routed", "state", "last switch", "freeze s", "held", "verify", "reason"
    )
    for r in result["ranges"]:
        freeze = r["last_freeze_seconds"]
        verify = r["last_verify_ok"]
        table.add_row(
            r["buckets"],
            r["routed"] or "-",
            r["state"],
            f"{r['switch_kind']} {r['switch_state']}" if r["switch_id"] else "-",
            "-" if freeze is None else f"{freeze:.3f}",
            str(r["held_requests"] if r["held_requests"] is not None else "-"),
            "-" if verify is None else ("clean" if verify else "DIFFERS"),
            (r["reason"] or "")[:60],
        )
    console.print(table)
    forward = result["sync"]["forward"]
    if forward is None:
        console.print("sync: no change stream yet (`cardcore migrate sync`)")
    else:
        secs = forward["seconds_behind"]
        console.print(
            f"sync legacy → core: {forward['status']}, position {forward['applied_position']}, "
            f"{forward['events_behind'] if forward['events_behind'] is not None else '?'} "
            f"event(s) / {'?' if secs is None else f'{secs:.2f}'} s behind; "
            "core → legacy: not running"
        )
