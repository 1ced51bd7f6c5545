"""What each page shows, as typed models: the JSON API returns them, the templates render them.

One model per page, built by `usecases`; nothing here reads a database. No model has a field
for a PAN, an ID number or a mobile number: the console shows counts and states, never people.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field


class StateInfo(BaseModel):
    state: str
    label: str
    colour: str
    buckets: int


class BucketCell(BaseModel):
    bucket: int
    shard: int
    state: str
    pool: str | None = Field(description="the gateway bucket route, None: route default")
    customers: int | None = None
    legacy_customers: int | None = None
    last_verify: str | None = None
    last_freeze: str | None = None


class BucketsView(BaseModel):
    generated_at: dt.datetime
    routes_version: int
    shards: int
    states: list[StateInfo]
    shard_buckets: dict[int, int]
    cells: list[BucketCell]


class EntityBar(BaseModel):
    entity: str
    chunks_done: int
    chunks_total: int
    chunks_failed: int
    rows_read: int
    rows_rejected: int


class RunRow(BaseModel):
    run_id: str
    mode: str
    as_of: dt.date
    status: str
    phase: int
    chunks_done: int
    chunks_total: int
    rows_read: int
    rows_per_second: float | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    error: str | None = None


class RuleFinding(BaseModel):
    code: str
    entity: str
    action: str
    meaning: str
    records: int


class LagPoint(BaseModel):
    at: dt.datetime
    events_behind: int
    seconds_behind: float


class MigrationView(BaseModel):
    generated_at: dt.datetime
    runs: list[RunRow]
    selected: RunRow | None
    entities: list[EntityBar]
    findings: list[RuleFinding]
    report_url: str | None
    cdc_lag: list[LagPoint]


class RouteTraffic(BaseModel):
    route: str
    requests_per_second: float | None
    errors_per_second: float | None
    requests_total: int
    errors_total: int
    p50_ms: float | None
    p99_ms: float | None
    rate_limited_total: int


class UpstreamInstance(BaseModel):
    pool: str
    instance: str
    breaker: str
    probe_healthy: bool | None


class TrafficView(BaseModel):
    generated_at: dt.datetime
    sources: list[str]
    scrape_errors: list[str]
    window_seconds: float | None
    routes: list[RouteTraffic]
    upstreams: list[UpstreamInstance]


class PartitionCell(BaseModel):
    step: str
    shard: int
    bucket_lo: int
    bucket_hi: int
    status: str
    buckets_done: int
    buckets_total: int
    attempts: int


class PartitionRange(BaseModel):
    """One shard × bucket range of an EOD run: its partition in each step, in step order."""

    shard: int
    bucket_lo: int
    bucket_hi: int
    steps: list[PartitionCell]


class StepRow(BaseModel):
    step: str
    status: str
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    seconds: float | None
    partitions_done: int
    partitions_total: int
    partitions_failed: int


class JobRow(BaseModel):
    job_id: str
    business_date: dt.date
    status: str
    runs: int
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    seconds: float | None
    error: str | None


class BatchView(BaseModel):
    generated_at: dt.datetime
    business_date: dt.date | None
    jobs: list[JobRow]
    selected: JobRow | None
    steps: list[StepRow]
    ranges: list[PartitionRange]
    failures: list[str]


class PoolRanges(BaseModel):
    pool: str
    ranges: list[str]
    buckets: int


class CutoverView(BaseModel):
    generated_at: dt.datetime
    routes_version: int
    pools: list[PoolRanges]
    unrouted: PoolRanges
