"""Run every benchmark of the project in turn and collect the figures side by side.

    bench/run [--size small|default|large] [NAME ...]

Each benchmark script measures cardcore and its baseline in the same run and saves
`results/<name>.json`; this runner calls them with the sizes of `--size` (`default`: the whole run
stays under 15 minutes on 2 cores; `small`: a quick look, a few minutes; `large`: closer to a real
book, much longer), then writes `results/latest.json` and `results/latest.md`. For any other size
run a script alone with its own options (`uv run python bench/<name>.py --help`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).parent
RESULTS = BENCH / "results"

# name -> (script, {size: arguments}). `default` measured on 2 busy cores: copybook_decode 100 s,
# gateway 100 s, authorization ~190 s, eod 70 s, migration ~180 s: about 11 minutes in all.
BENCHMARKS: dict[str, tuple[str, dict[str, list[str]]]] = {
    "copybook_decode": (
        "copybook_decode.py",
        {
            "small": ["--records", "50000"],
            "default": ["--records", "200000"],
            "large": ["--records", "1000000"],
        },
    ),
    "gateway": (
        "gateway.py",
        {
            "small": ["--requests", "3000", "--rounds", "1"],
            "default": ["--requests", "10000", "--rounds", "3"],
            "large": ["--requests", "40000", "--rounds", "5"],
        },
    ),
    "authorization": (
        "authorization.py",
        {
            "small": ["--requests", "500"],
            "default": ["--requests", "2000"],
            "large": ["--requests", "20000", "--cards", "2000"],
        },
    ),
    "migration": (
        "migration.py",
        {
            "small": ["--customers", "5000"],
            "default": ["--customers", "20000"],
            "large": ["--customers", "100000"],
        },
    ),
    "cdc": (
        "cdc.py",
        {
            "small": ["--customers", "500", "--seconds", "10"],
            "default": ["--customers", "2000", "--seconds", "30"],
            "large": ["--customers", "20000", "--seconds", "120"],
        },
    ),
    "eod": (
        "eod.py",
        {
            "small": ["--accounts", "20000"],
            "default": ["--accounts", "100000"],
            "large": ["--accounts", "1000000"],
        },
    ),
}
SIZES = ("small", "default", "large")


def markdown(runs: dict[str, dict]) -> list[str]:
    """One row per figure: the value, its baseline measured in the same run, and the ratio."""
    lines = [
        "| benchmark | figure | value | baseline (same run) | baseline value | ratio |",
        "|---|---|---:|---|---:|---:|",
    ]
    for name, run in runs.items():
        for f in run.get("figures", []):
            lines.append(
                f"| {name} | {f['name']} | {f['value']:.1f} {f['unit']} | "
                f"{f['baseline_name']} | {f['baseline']:.1f} {f['unit']} | {f['ratio']:.2f} |"
            )
        if not run.get("figures"):
            lines.append(f"| {name} | — | {run['status']} | | | |")
    lines += [
        "",
        "ratio > 1: cardcore does better than the baseline (throughput value / baseline; "
        "for times and latencies baseline / value).",
    ]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="benchmark names (default: all)")
    parser.add_argument("--size", choices=SIZES, default="default", help="sizes of every run")
    args = parser.parse_args()
    chosen = args.only or list(BENCHMARKS)
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
        return 2
    RESULTS.mkdir(exist_ok=True)
    runs = {}
    for name in chosen:
        script, sizes = BENCHMARKS[name]
        script_args = sizes[args.size]
        if not (BENCH / script).exists():
            runs[name] = {"status": "missing", "seconds": 0}
            continue
        result_file = RESULTS / f"{name}.json"
        result_file.unlink(missing_ok=True)
        print(f"\n=== {name}: {script} {' '.join(script_args)}", flush=True)
        started = time.monotonic()
        code = subprocess.run([sys.executable, str(BENCH / script), *script_args]).returncode
        seconds = round(time.monotonic() - started, 1)
        status = "ok" if code == 0 and result_file.exists() else f"failed (exit {code})"
        runs[name] = {"status": status, "seconds": seconds}
        if result_file.exists():
            runs[name]["figures"] = json.loads(result_file.read_text())["figures"]
    latest = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "size": args.size,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "seconds": round(sum(run["seconds"] for run in runs.values()), 1),
        "benchmarks": runs,
    }
    (RESULTS / "latest.json").write_text(json.dumps(latest, indent=2))
    lines = markdown(runs)
    lines.append(
        f"\nSize `{args.size}`, {os.cpu_count()} CPUs, {latest['seconds']:.0f} s in all: "
        + ", ".join(f"{name} {run['seconds']:.0f} s" for name, run in runs.items())
        + "."
    )
    (RESULTS / "latest.md").write_text("\n".join(lines) + "\n")
    print("\n" + "\n".join(lines))
    return 0 if all(r["status"] == "ok" for r in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
