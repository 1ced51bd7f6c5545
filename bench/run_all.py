"""Run every benchmark of the project in turn and collect the figures side by side.

Each benchmark script measures cardcore and its baseline in the same run and saves
`results/<name>.json`; this runner calls them with modest default sizes (the whole run stays
under 15 minutes on 2 cores), then writes `results/latest.json` and `results/latest.md`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).parent
RESULTS = BENCH / "results"

# name -> (script, default arguments)
BENCHMARKS: dict[str, tuple[str, list[str]]] = {
    "copybook_decode": ("copybook_decode.py", ["--records", "200000"]),
    "gateway": ("gateway.py", []),
    "authorization": ("authorization.py", ["--requests", "4000"]),
    "migration": ("migration.py", ["--customers", "20000"]),
    "eod": ("eod.py", ["--accounts", "100000"]),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="benchmark names (default: all)")
    args = parser.parse_args()
    chosen = args.only or list(BENCHMARKS)
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
        return 2
    RESULTS.mkdir(exist_ok=True)
    runs = {}
    for name in chosen:
        script, default_args = BENCHMARKS[name]
        if not (BENCH / script).exists():
            runs[name] = {"status": "missing", "seconds": 0}
            continue
        result_file = RESULTS / f"{name}.json"
        result_file.unlink(missing_ok=True)
        print(f"\n=== {name}: {script} {' '.join(default_args)}", flush=True)
        started = time.monotonic()
        code = subprocess.run([sys.executable, str(BENCH / script), *default_args]).returncode
        seconds = round(time.monotonic() - started, 1)
        status = "ok" if code == 0 and result_file.exists() else f"failed (exit {code})"
        runs[name] = {"status": status, "seconds": seconds}
        if result_file.exists():
            runs[name]["figures"] = json.loads(result_file.read_text())["figures"]
    latest = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "benchmarks": runs,
    }
    (RESULTS / "latest.json").write_text(json.dumps(latest, indent=2))
    lines = [
        "| benchmark | figure | value | baseline | baseline value | ratio |",
        "|---|---|---:|---|---:|---:|",
    ]
    for name, run in runs.items():
        for f in run.get("figures", []):
            lines.append(
                f"| {name} | {f['name']} | {f['value']:.1f} {f['unit']} | "
                f"{f['baseline_name']} | {f['baseline']:.1f} | {f['ratio']:.2f} |"
            )
        if not run.get("figures"):
            lines.append(f"| {name} | — | {run['status']} | | | |")
    (RESULTS / "latest.md").write_text("\n".join(lines) + "\n")
    print("\n" + "\n".join(lines))
    return 0 if all(r["status"] == "ok" for r in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
