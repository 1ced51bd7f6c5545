"""The invariant check after a load test: did any money go wrong under load?

Each check reads the ledger's shard databases directly (an operator's audit, not an online path)
and returns a named pass/fail with the first offenders, so a failure says where to look:
- approvals: every approval the clients saw is recorded, approved, exactly once, and the ledger
  holds no authorization of the test cards that no client request asked for;
- limits: no test account's balance + open holds exceeds its credit limit;
- journal: for every account on every shard, balance = sum of journal entries, and each
  component column = the sum of its component's entries;
- holds: open holds = sum of the unreversed, uncleared approvals, for every account;
- PAN: no issued PAN appears in clear in any service log or any database file or table.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from cardcore_kernel.db import ShardSet, bucket_map, is_sqlite
from cardcore_kernel.settings import CardcoreSettings

LEDGER = "ledger"
SAMPLE = 5


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def _ledger_shards(settings: CardcoreSettings) -> ShardSet:
    return ShardSet(LEDGER, settings, bucket_map(settings))


def check_approvals(settings: CardcoreSettings, journal: Path, account_ids: set[str]) -> Check:
    seen = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
    approved_seen = {row["authorization_id"] for row in seen if row["status"] == "approved"}
    stored: Counter[str] = Counter()
    stored_approved: set[str] = set()
    shards = _ledger_shards(settings)
    for _shard, engine in shards.all():
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT authorization_id, account_id, status FROM authorizations")
            )
            for authorization_id, account_id, status in rows:
                if account_id in account_ids:
                    stored[authorization_id] += 1
                    if status == "approved":
                        stored_approved.add(authorization_id)
    shards.dispose()
    missing = sorted(approved_seen - stored_approved)
    duplicated = sorted(a for a, n in stored.items() if n > 1)
    unasked = len(stored) - len({row["authorization_id"] for row in seen})
    ok = not missing and not duplicated and unasked <= 0
    detail = (
        f"{len(approved_seen)} approvals seen, {len(stored_approved)} stored"
        + (f"; missing {missing[:SAMPLE]}" if missing else "")
        + (f"; duplicated {duplicated[:SAMPLE]}" if duplicated else "")
        + (f"; {unasked} stored but never answered" if unasked > 0 else "")
    )
    return Check("every approval recorded exactly once", ok, detail)


def _per_account(settings: CardcoreSettings, query: str) -> list[dict[str, Any]]:
    shards = _ledger_shards(settings)
    rows: list[dict[str, Any]] = []
    for _shard, engine in shards.all():
        with engine.connect() as conn:
            rows.extend(dict(row._mapping) for row in conn.execute(sa.text(query)))
    shards.dispose()
    return rows


def check_limits(settings: CardcoreSettings, account_ids: set[str]) -> Check:
    rows = _per_account(
        settings, "SELECT account_id, credit_limit, balance, open_holds FROM ledger_accounts"
    )
    over = [
        r["account_id"]
        for r in rows
        if r["account_id"] in account_ids and r["balance"] + r["open_holds"] > r["credit_limit"]
    ]
    return Check(
        "no account over its limit",
        not over,
        f"{len(account_ids)} accounts" + (f"; over: {over[:SAMPLE]}" if over else ""),
    )


JOURNAL_QUERY = """
SELECT a.account_id, a.balance, a.principal_purchase, a.principal_cash, a.interest, a.fees,
       a.credit_balance,
       COALESCE(SUM(j.amount), 0) AS journal_total,
       COALESCE(SUM(CASE WHEN j.component = 'purchase' THEN j.amount END), 0) AS j_purchase,
       COALESCE(SUM(CASE WHEN j.component = 'cash' THEN j.amount END), 0) AS j_cash,
       COALESCE(SUM(CASE WHEN j.component = 'interest' THEN j.amount END), 0) AS j_interest,
       COALESCE(SUM(CASE WHEN j.component = 'fees' THEN j.amount END), 0) AS j_fees,
       COALESCE(SUM(CASE WHEN j.component = 'credit' THEN j.amount END), 0) AS j_credit
FROM ledger_accounts a LEFT JOIN journal_entries j ON j.account_id = a.account_id
GROUP BY a.account_id, a.balance, a.principal_purchase, a.principal_cash, a.interest, a.fees,
         a.credit_balance
"""


def check_journal(settings: CardcoreSettings) -> Check:
    rows = _per_account(settings, JOURNAL_QUERY)
    wrong = [
        r["account_id"]
        for r in rows
        if (
            r["balance"],
            r["principal_purchase"],
            r["principal_cash"],
            r["interest"],
            r["fees"],
            r["credit_balance"],
        )
        != (
            r["journal_total"],
            r["j_purchase"],
            r["j_cash"],
            r["j_interest"],
            r["j_fees"],
            -r["j_credit"],
        )
    ]
    return Check(
        "balance = sum of journal entries",
        not wrong,
        f"{len(rows)} accounts on all shards" + (f"; wrong: {wrong[:SAMPLE]}" if wrong else ""),
    )


HOLDS_QUERY = """
SELECT a.account_id, a.open_holds,
       COALESCE(SUM(CASE WHEN h.hold_state = 'open' THEN h.hold_amount END), 0) AS held
FROM ledger_accounts a LEFT JOIN authorizations h ON h.account_id = a.account_id
GROUP BY a.account_id, a.open_holds
"""


def check_holds(settings: CardcoreSettings) -> Check:
    rows = _per_account(settings, HOLDS_QUERY)
    wrong = [r["account_id"] for r in rows if r["open_holds"] != r["held"]]
    return Check(
        "open holds = unreversed, uncleared approvals",
        not wrong,
        f"{len(rows)} accounts" + (f"; wrong: {wrong[:SAMPLE]}" if wrong else ""),
    )


def _database_urls(settings: CardcoreSettings) -> list[str]:
    from cardcore_kernel.schema import installed_schemas

    urls = {settings.control_database_url}
    for schema in installed_schemas():
        urls.update(schema.urls(settings))
    return sorted(urls)


def _pan_in_database(url: str, pans: list[str]) -> list[str]:
    """Where any of `pans` occurs in clear in the database at `url` (table names)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    hits: list[str] = []
    try:
        if is_sqlite(engine):
            path = Path(engine.url.database or "")
            for candidate in (path, path.with_name(path.name + "-wal")):
                if candidate.exists():
                    raw = candidate.read_bytes()
                    hits += [f"{candidate.name}" for pan in pans if pan.encode() in raw][:1]
            return hits
        pattern = "|".join(pans)
        with engine.connect() as conn:
            tables = sa.inspect(conn).get_table_names()
            for table in tables:
                found = conn.execute(
                    sa.text(f'SELECT 1 FROM "{table}" t WHERE t::text ~ :p LIMIT 1'), {"p": pattern}
                ).first()
                if found:
                    hits.append(table)
    finally:
        engine.dispose()
    return hits


def _log_files(places: list[Path]) -> list[Path]:
    """Every `*.log` file under the directories of `places`, and the files named there."""
    files: set[Path] = set()
    for place in places:
        if place.is_dir():
            files.update(place.rglob("*.log"))
        elif place.is_file():
            files.add(place)
    return sorted(files)


def check_no_clear_pan(settings: CardcoreSettings, pans: list[str], logs: list[Path]) -> Check:
    """No PAN of `pans` in the log files at `logs` (files or directories) or any database."""
    hits: list[str] = []
    log_files = _log_files(logs)
    for log in log_files:
        text = log.read_text(errors="replace")
        if any(pan in text for pan in pans):
            hits.append(str(log))
    urls = _database_urls(settings)
    for url in urls:
        hits += [f"{url.rsplit('/', 1)[-1]}:{where}" for where in _pan_in_database(url, pans)]
    return Check(
        "no PAN in clear in logs or databases",
        not hits,
        f"{len(pans)} PANs searched in {len(log_files)} log files and {len(urls)} databases"
        + (f"; found in {hits[:SAMPLE]}" if hits else ""),
    )
