"""One use case per page: read the sources, shape the page's model. No SQL, no HTTP here.

Every function returns the same model the JSON API serves and the template renders, so the two
cannot disagree. Missing facts stay None (shown as "—"), never guessed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter

from cardcore_console import domain, models
from cardcore_console.sources.batch import BatchSource
from cardcore_console.sources.buckets import BucketSource
from cardcore_console.sources.cutover import bucket_states
from cardcore_console.sources.migration import MigrationSource
from cardcore_console.sources.traffic import GatewayMetrics, Scrape
from cardcore_kernel.sharding import BUCKET_COUNT


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _seconds(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    if start is None:
        return None
    start = start if start.tzinfo else start.replace(tzinfo=dt.UTC)
    end = end or _now()
    end = end if end.tzinfo else end.replace(tzinfo=dt.UTC)
    return max((end - start).total_seconds(), 0.0)


# ------------------------------------------------------------------------------------ buckets


async def buckets_view(source: BucketSource) -> models.BucketsView:
    (version, routes), counts = await asyncio.gather(source.routes(), source.customers_async())
    shards = await asyncio.to_thread(source.shards)
    statuses = bucket_states(routes, await asyncio.to_thread(source.switches))
    cells = []
    for bucket in range(BUCKET_COUNT):
        status = statuses[bucket]
        count = counts.get(bucket) if counts is not None else None
        cells.append(
            models.BucketCell(
                bucket=bucket,
                shard=shards[bucket],
                state=status.state,
                pool=routes.get(bucket),
                customers=None if counts is None else (count.total if count else 0),
                legacy_customers=None if counts is None else (count.legacy if count else 0),
                last_verify=status.last_verify,
                last_freeze=status.last_freeze,
            )
        )
    per_state = Counter(s.state for s in statuses)
    return models.BucketsView(
        generated_at=_now(),
        routes_version=version,
        shards=source.shard_count,
        states=[
            models.StateInfo(
                state=state,
                label=domain.STATE_LABELS[state],
                colour=domain.STATE_COLOURS[state],
                buckets=per_state.get(state, 0),
            )
            for state in domain.SERVING_STATES
        ],
        shard_buckets=dict(sorted(Counter(shards).items())),
        cells=cells,
    )


async def cutover_view(source: BucketSource) -> models.CutoverView:
    version, routes = await source.routes()
    by_pool: dict[str, list[int]] = {}
    for bucket, pool in routes.items():
        by_pool.setdefault(pool, []).append(bucket)
    unrouted = [b for b in range(BUCKET_COUNT) if b not in routes]
    return models.CutoverView(
        generated_at=_now(),
        routes_version=version,
        pools=[
            models.PoolRanges(pool=pool, ranges=domain.compress(buckets), buckets=len(buckets))
            for pool, buckets in sorted(by_pool.items())
        ],
        unrouted=models.PoolRanges(
            pool="(route default)", ranges=domain.compress(unrouted), buckets=len(unrouted)
        ),
    )


# ---------------------------------------------------------------------------------- migration


def migration_view(source: MigrationSource, run_id: str | None = None) -> models.MigrationView:
    runs = source.runs()
    rows = []
    for run in runs:
        elapsed = _seconds(run.started_at, run.finished_at)
        rows.append(
            models.RunRow(
                run_id=run.run_id,
                mode=run.mode,
                as_of=run.as_of,
                status=run.status,
                phase=run.phase,
                chunks_done=run.chunks_done,
                chunks_total=run.chunks_total,
                rows_read=run.rows_read,
                rows_per_second=(run.rows_read / elapsed) if elapsed else None,
                started_at=run.started_at,
                finished_at=run.finished_at,
                error=(run.error or None) and run.error[:300],
            )
        )
    selected_index = next((i for i, r in enumerate(rows) if r.run_id == run_id), 0)
    selected = rows[selected_index] if rows else None
    entities: list[models.EntityBar] = []
    findings: list[models.RuleFinding] = []
    report_url = None
    if selected is not None:
        run = runs[selected_index]
        entities = [
            models.EntityBar(
                entity=name,
                chunks_done=e.chunks_done,
                chunks_total=e.chunks_total,
                chunks_failed=e.chunks_failed,
                rows_read=e.rows_read,
                rows_rejected=e.rows_rejected,
            )
            for name, e in run.entities.items()
        ]
        catalogue = source.rule_catalogue()
        for code, n in source.rule_counts(run.run_id).items():
            rule = catalogue.get(code, {})
            findings.append(
                models.RuleFinding(
                    code=code,
                    entity=str(rule.get("entity", "?")),
                    action=str(rule.get("action", "?")),
                    meaning=str(rule.get("meaning", "")),
                    records=n,
                )
            )
        if source.report_path(run.run_id) is not None:
            report_url = f"/migration/runs/{run.run_id}/report"
    return models.MigrationView(
        generated_at=_now(),
        runs=rows,
        selected=selected,
        entities=entities,
        findings=findings,
        report_url=report_url,
        cdc_lag=[
            models.LagPoint(at=at, events_behind=events, seconds_behind=seconds)
            for at, events, seconds in source.cdc_lag()
        ],
    )


# ------------------------------------------------------------------------------------ traffic


def _is_error(status: str) -> bool:
    """A failed request: the gateway or an upstream failed it (5xx). 4xx are answers."""
    return status.startswith("5")


async def traffic_view(metrics: GatewayMetrics) -> models.TrafficView:
    newest, older = await metrics.window()
    seconds = (newest.at - older.at) if older is not None else None
    routes = sorted(
        {route for route, _ in newest.requests} | set(newest.latency) | set(newest.rate_limited)
    )
    rows = []
    for route in routes:
        total = _sum(newest, route, errors=False)
        errors = _sum(newest, route, errors=True)
        histogram = domain.merge_histograms(newest.latency.get(route, []))
        if histogram is not None and older is not None:
            histogram = histogram.minus(domain.merge_histograms(older.latency.get(route, [])))
        p50 = histogram.quantile(0.5) if histogram else None
        p99 = histogram.quantile(0.99) if histogram else None
        rows.append(
            models.RouteTraffic(
                route=route,
                requests_per_second=domain.rate(
                    total, _sum(older, route, errors=False) if older else None, seconds or 0
                ),
                errors_per_second=domain.rate(
                    errors, _sum(older, route, errors=True) if older else None, seconds or 0
                ),
                requests_total=int(total),
                errors_total=int(errors),
                p50_ms=None if p50 is None else round(p50 * 1000, 2),
                p99_ms=None if p99 is None else round(p99 * 1000, 2),
                rate_limited_total=int(newest.rate_limited.get(route, 0)),
            )
        )
    upstreams = [
        models.UpstreamInstance(
            pool=pool,
            instance=instance,
            breaker=domain.BREAKER_STATES.get(int(value), str(value)),
            probe_healthy=(
                None
                if (pool, instance) not in newest.healthy
                else newest.healthy[(pool, instance)] >= 1
            ),
        )
        for (pool, instance), value in sorted(newest.breakers.items())
    ]
    return models.TrafficView(
        generated_at=_now(),
        sources=metrics.urls,
        scrape_errors=newest.errors,
        window_seconds=None if seconds is None else round(seconds, 1),
        routes=rows,
        upstreams=upstreams,
    )


def _sum(scrape: Scrape, route: str, *, errors: bool) -> float:
    return sum(
        n
        for (r, status), n in scrape.requests.items()
        if r == route and (_is_error(status) or not errors)
    )


# -------------------------------------------------------------------------------------- batch


def batch_view(source: BatchSource, business_date: dt.date | None = None) -> models.BatchView:
    jobs = [
        models.JobRow(
            job_id=j.job_id,
            business_date=j.business_date,
            status=j.status,
            runs=j.runs,
            started_at=j.started_at,
            finished_at=j.finished_at,
            seconds=_seconds(j.started_at, j.finished_at if j.status != "running" else None),
            error=(j.error or None) and j.error[:300],
        )
        for j in source.jobs()
    ]
    default = jobs[0] if jobs else None
    selected = next((j for j in jobs if j.business_date == business_date), default)
    steps: list[models.StepRow] = []
    ranges: list[models.PartitionRange] = []
    cells: list[models.PartitionCell] = []
    failures: list[str] = []
    if selected is not None:
        partitions = source.partitions(selected.job_id)
        for p in partitions:
            cells.append(
                models.PartitionCell(
                    step=p.step,
                    shard=p.shard,
                    bucket_lo=p.bucket_lo,
                    bucket_hi=p.bucket_hi,
                    status=p.status,
                    buckets_done=len(p.buckets) if p.status == "done" else p.buckets_done,
                    buckets_total=len(p.buckets),
                    attempts=p.attempts,
                )
            )
            if p.status == "failed":
                failures.append(f"{p.step} shard {p.shard} buckets {p.bucket_lo}-{p.bucket_hi}")
        by_step: dict[str, list[models.PartitionCell]] = {}
        for cell in cells:
            by_step.setdefault(cell.step, []).append(cell)
        step_rows = source.steps(selected.job_id)
        order = {s.step: s.seq for s in step_rows}
        by_range: dict[tuple[int, int], models.PartitionRange] = {}
        for cell in sorted(cells, key=lambda c: (c.bucket_lo, c.shard, order.get(c.step, 99))):
            key = (cell.bucket_lo, cell.shard)
            if key not in by_range:
                by_range[key] = models.PartitionRange(
                    shard=cell.shard, bucket_lo=cell.bucket_lo, bucket_hi=cell.bucket_hi, steps=[]
                )
            by_range[key].steps.append(cell)
        ranges = list(by_range.values())
        for s in step_rows:
            mine = by_step.get(s.step, [])
            steps.append(
                models.StepRow(
                    step=s.step,
                    status=s.status,
                    started_at=s.started_at,
                    finished_at=s.finished_at,
                    seconds=_seconds(s.started_at, s.finished_at) if s.started_at else None,
                    partitions_done=sum(c.status == "done" for c in mine),
                    partitions_total=len(mine),
                    partitions_failed=sum(c.status == "failed" for c in mine),
                )
            )
        if selected.error:
            failures.insert(0, selected.error)
    return models.BatchView(
        generated_at=_now(),
        business_date=source.business_date(),
        jobs=jobs,
        selected=selected,
        steps=steps,
        ranges=ranges,
        failures=failures,
    )
