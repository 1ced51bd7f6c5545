"""The dry-run (and later apply) report: SPEC.md "The dry-run report", assembled from chunks.

Pure: it takes the run, its chunk results and its archive files' F01 verdicts as plain mappings
and returns the JSON-ready dict. Card sample keys are already masked by the chunks; no PAN
reaches this module. Archived transactions are in the `transaction` chunks already; a rejected
archive file counts once under F01 (sample: its name) and in `archive_files`, nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cardcore_kernel.money import yuan
from cardcore_migration.domain.codes import ALL_CODES, ENTITIES

SAMPLES_PER_CODE = 20


def build_report(
    run: Mapping[str, Any],
    chunks: Iterable[Mapping[str, Any]],
    archive_files: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    entities = {e: {"read": 0, "migrated": 0, "rejected": 0} for e in ENTITIES}
    rules: dict[str, int] = {}
    shards: dict[str, dict[str, int]] = {}
    samples: dict[str, list[str]] = {}
    balance = {"migrated": 0, "rejected": 0}
    totals: dict[str, dict[str, int]] = {}
    chunk_list = sorted(chunks, key=lambda c: (c["phase"], c["entity"], c["seq"]))
    for chunk in chunk_list:
        entity = chunk["entity"]
        counts = entities[entity]
        counts["read"] += chunk["rows_read"]
        counts["migrated"] += chunk["rows_migrated"]
        counts["rejected"] += chunk["rows_rejected"]
        for code, n in (chunk["rule_counts"] or {}).items():
            rules[code] = rules.get(code, 0) + n
        for shard, n in (chunk["shard_counts"] or {}).items():
            per_shard = shards.setdefault(shard, {e: 0 for e in ENTITIES})
            per_shard[entity] += n
        for code, keys in (chunk["samples"] or {}).items():
            bucket = samples.setdefault(code, [])
            bucket.extend(keys[: SAMPLES_PER_CODE - len(bucket)])
        if chunk["signed_totals"]:
            entity_totals = totals.setdefault(entity, {"migrated": 0, "rejected": 0})
            for side in ("migrated", "rejected"):
                entity_totals[side] += chunk["signed_totals"][side]
            if entity == "account":
                for side in ("migrated", "rejected"):
                    balance[side] += chunk["signed_totals"][side]
    files: dict[str, dict[str, Any]] = {}
    for verdict in archive_files:
        files[verdict["name"]] = {
            "status": verdict["status"],
            "details": verdict["details"],
            "reason": verdict["reason"],
        }
        if verdict["status"] == "rejected":
            rules["F01"] = rules.get("F01", 0) + 1
            rejected_files = samples.setdefault("F01", [])
            if len(rejected_files) < SAMPLES_PER_CODE:
                rejected_files.append(verdict["name"])
    order = {code: i for i, code in enumerate(ALL_CODES)}
    return {
        "mode": run["mode"],
        "as_of": run["as_of"].isoformat(),
        "run_id": run["run_id"],
        "status": run["status"],
        "source": run["source"],
        "watermark": {
            "upd_ts": run["watermark_upd_ts"],
            "txn_seq": run["watermark_txn_seq"],
            "auth_id": run["watermark_auth_id"],
        },
        "entities": entities,
        "rules": {c: rules[c] for c in sorted(rules, key=lambda c: order.get(c, len(order)))},
        "balance": {
            "migrated_signed_total": yuan(balance["migrated"]),
            "rejected_signed_total": yuan(balance["rejected"]),
        },
        "totals": {
            entity: {side: yuan(value) for side, value in sides.items()}
            for entity, sides in totals.items()
        },
        "shards": dict(sorted(shards.items(), key=lambda item: int(item[0]))),
        "samples": {c: samples[c] for c in sorted(samples, key=lambda c: order.get(c, len(order)))},
        "archive_files": dict(sorted(files.items())),
        "chunks": len(chunk_list),
    }
