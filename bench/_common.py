"""What every benchmark script shares: timing a bounded async HTTP load and printing a table.

Each benchmark measures the project and its baseline in the same run on the same machine, and
prints both side by side with the ratio; `bench/run` collects the figures into results/.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

RESULTS = Path(__file__).parent / "results"


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    baseline_name: str
    baseline: float
    higher_is_better: bool = True

    @property
    def ratio(self) -> float:
        if not self.baseline or not self.value:
            return 0.0
        return self.value / self.baseline if self.higher_is_better else self.baseline / self.value


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else 0.0


async def _load(
    url: str,
    total: int,
    concurrency: int,
    make_request: Callable[[int], dict[str, Any]],
    ok_status: tuple[int, ...],
) -> LoadResult:
    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal errors
            for index in counter:
                request = make_request(index)
                started = time.perf_counter()
                try:
                    response = await client.request(**request)
                    if response.status_code not in ok_status:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return LoadResult(total, errors, seconds, latencies)


def http_load(
    url: str,
    total: int,
    concurrency: int,
    make_request: Callable[[int], dict[str, Any]],
    ok_status: tuple[int, ...] = (200, 201),
) -> LoadResult:
    return asyncio.run(_load(url, total, concurrency, make_request, ok_status))


def print_figures(title: str, figures: list[Figure]) -> None:
    print(f"\n{title}")
    print(f"{'figure':<44}{'value':>14}  {'baseline':<34}{'value':>14}{'ratio':>8}")
    for f in figures:
        print(
            f"{f.name:<44}{f.value:>12.1f} {f.unit[:1]}  {f.baseline_name:<34}"
            f"{f.baseline:>14.1f}{f.ratio:>8.2f}"
        )


def save(name: str, figures: list[Figure], extra: dict[str, Any] | None = None) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(
        json.dumps(
            {
                "benchmark": name,
                "figures": [{**asdict(f), "ratio": round(f.ratio, 3)} for f in figures],
                **(extra or {}),
            },
            indent=2,
        )
    )
    return path
