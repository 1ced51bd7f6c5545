"""Authorization throughput and p99 vs the limit: pgbench running the same conditional UPDATE.

An authorization is one short transaction on one shard whose heart is one conditional UPDATE
(`open_holds = open_holds + amount WHERE available >= amount`). The limit for that on this
server is pgbench running exactly that statement at the same concurrency on the same PostgreSQL;
the ratio says how much the service (HTTP, JSON, validation, idempotency row, authorization row,
PAN lookup) costs on top of it.

    uv run python bench/authorization.py [--cards 200] [--requests 4000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _common import Figure, http_load, print_figures, save

from cardcore_kernel.schema import installed_schemas
from cardcore_kernel.settings import CardcoreSettings
from cardcore_kernel.testing import PG_SERVER, ServiceProcess, StackEnv, free_port

PGBENCH_SCRIPT = """\\set aid random(1, {accounts})
UPDATE bench_accounts SET open_holds = open_holds + 1
 WHERE id = :aid AND credit_limit - balance - open_holds >= 1;
"""


def issue_cards(accounts_url: str, count: int) -> list[str]:
    pans = []
    with httpx.Client(base_url=accounts_url, timeout=30) as client:
        for index in range(count):
            customer = client.post(
                "/v1/customers",
                json={
                    "name": "压测",
                    "id_type": "passport",
                    "id_number": f"B{index:08d}",
                    "mobile": None,
                },
            ).json()
            account = client.post(
                "/v1/accounts",
                json={
                    "customer_id": customer["customer_id"],
                    "product": "platinum",
                    "credit_limit": "900000.00",
                    "cycle_day": 1,
                },
            ).json()
            card = client.post(
                "/v1/cards", json={"account_id": account["account_id"], "role": "primary"}
            ).json()
            client.post(f"/v1/cards/{card['card_id']}/activate").raise_for_status()
            pans.append(card["pan"])
    return pans


def pgbench(
    database_url: str, accounts: int, clients: int, transactions: int
) -> tuple[float, float]:
    """(tps, p99 ms) of the one-row conditional UPDATE; pgbench's latency log gives the p99."""
    import sqlalchemy as sa

    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS bench_accounts")
        conn.exec_driver_sql(
            "CREATE TABLE bench_accounts (id int PRIMARY KEY, credit_limit bigint, "
            "balance bigint, open_holds bigint)"
        )
        conn.exec_driver_sql(
            f"INSERT INTO bench_accounts SELECT g, 90000000, 0, 0 "
            f"FROM generate_series(1, {accounts}) g"
        )
    engine.dispose()
    db = database_url.rsplit("/", 1)[1]
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "auth.sql"
        script.write_text(PGBENCH_SCRIPT.format(accounts=accounts))
        result = subprocess.run(
            [
                "pgbench",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-n",
                "-c",
                str(clients),
                "-j",
                "2",
                "-t",
                str(max(1, transactions // clients)),
                "-f",
                str(script),
                "-r",
                "--log",
                f"--log-prefix={tmp}/lat",
                db,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        tps = float(re.search(r"tps = ([\d.]+)", result.stdout).group(1))
        latencies = sorted(
            int(line.split()[2]) / 1000
            for log in Path(tmp).glob("lat*")
            for line in log.read_text().splitlines()
        )
    return tps, latencies[int(0.99 * (len(latencies) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=200)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        stack = StackEnv("postgres", Path(tmp) / "cc", shards=2)
        ports = {"accounts": free_port(), "ledger": free_port()}
        env = {
            **stack.env,
            "CARDCORE_ACCOUNTS_URL": f"http://127.0.0.1:{ports['accounts']}",
            "CARDCORE_LEDGER_URL": f"http://127.0.0.1:{ports['ledger']}",
        }
        os.environ.update(env)
        settings = CardcoreSettings()
        try:
            for schema in installed_schemas():
                schema.upgrade(settings)
            with (
                ServiceProcess("cardcore_ledger.api:app", env, ports["ledger"]) as ledger,
                ServiceProcess("cardcore_accounts.api:app", env, ports["accounts"]) as accounts,
            ):
                pans = issue_cards(accounts.url, args.cards)
                rng = random.Random(1)

                def authorization(_index: int) -> dict[str, object]:
                    return {
                        "method": "POST",
                        "url": "/v1/authorizations",
                        "headers": {"Idempotency-Key": str(uuid.uuid4())},
                        "json": {
                            "pan": rng.choice(pans),
                            "amount": "1.00",
                            "currency": "CNY",
                            "kind": "purchase",
                            "merchant": {"mcc": "5411", "name": "bench"},
                        },
                    }

                http_load(ledger.url, min(500, args.requests), args.concurrency, authorization)
                service = http_load(ledger.url, args.requests, args.concurrency, authorization)
            tps, pg_p99 = pgbench(
                f"{PG_SERVER}/{stack.prefix}_ledger_0", args.cards, args.concurrency, args.requests
            )
        finally:
            stack.drop_databases()
    figures = [
        Figure(
            "authorizations/s (ledger, HTTP)",
            service.rps,
            "/s",
            "pgbench conditional UPDATE tps",
            tps,
        ),
        Figure(
            "authorization p99 latency",
            service.percentile(99),
            "ms",
            "pgbench p99 latency",
            pg_p99,
            higher_is_better=False,
        ),
    ]
    print_figures(
        f"Authorization vs the limit ({args.requests} requests, "
        f"concurrency {args.concurrency}, errors {service.errors})",
        figures,
    )
    save("authorization", figures, {"errors": service.errors, "p50_ms": service.p50})


if __name__ == "__main__":
    main()
