"""The set-based step SQL computes with the rules' SQL forms (`cardcore_ledger.eod.rules.*_sql`):
each must give exactly what its Python rule gives (integer fen, half-up away from zero), on
SQLite and PostgreSQL, on thousands of seeded values (boundaries, signs, large amounts)."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Sequence

import pytest
import sqlalchemy as sa

from cardcore_batch import service
from cardcore_batch.settings import BatchSettings, load_batch_settings
from cardcore_kernel.money import percent_of
from cardcore_kernel.testing import StackEnv
from cardcore_ledger.eod import rules, write_postings

CASES = 4000


@pytest.fixture
def engine(stack: StackEnv) -> sa.Engine:
    settings: BatchSettings = load_batch_settings()
    return next(iter(service.ledger_shards(settings).all()))[1]


def _amount(rng: random.Random) -> int:
    """A fen amount around the interesting edges: 0, rounding .5 edges, the 100.00 floor, huge."""
    return rng.choice(
        [
            0,
            rng.randint(0, 200),
            rng.choice([5, 15, 45, 49, 50, 51, 149, 150, 151, 9_999, 10_000, 10_001]),
            rng.randint(0, 10**6),
            rng.randint(0, 10**12),
        ]
    )


def _evaluate(engine: sa.Engine, expr: str, rows: Sequence[tuple[int, ...]]) -> list[int]:
    """`expr` over columns c0, c1, … for each row, in one statement (a CTE of BIGINT values)."""
    width = len(rows[0])
    values = ", ".join(
        "(" + ", ".join(str(v) for v in (i, *row)) + ")" for i, row in enumerate(rows)
    )
    casts = ", ".join(f"CAST(v{n} AS BIGINT) AS c{n}" for n in range(width))
    vnames = ", ".join(f"v{n}" for n in range(width))
    sql = (
        f"WITH raw(i, {vnames}) AS (VALUES {values}), t AS (SELECT i, {casts} FROM raw) "
        f"SELECT i, {expr} FROM t ORDER BY i"
    )
    with engine.connect() as conn:
        return [int(value) for _i, value in conn.execute(sa.text(sql))]


def _agree(
    engine: sa.Engine, expr: str, rule: Callable[..., int], rows: Sequence[tuple[int, ...]]
) -> None:
    got = _evaluate(engine, expr, rows)
    expected = [rule(*row) for row in rows]
    wrong = [(row, g, e) for row, g, e in zip(rows, got, expected, strict=True) if g != e]
    assert not wrong, wrong[:5]


def test_posted_interest_rounds_like_the_rule(engine: sa.Engine) -> None:
    rng = random.Random(21)
    rows = [(rng.choice([1, 1, 1, -1]) * _amount(rng),) for _ in range(CASES)]
    _agree(engine, rules.posted_interest_fen_sql("c0"), rules.posted_interest_fen, rows)


@pytest.mark.parametrize("percent", [rules.MINIMUM_PRINCIPAL_PERCENT, rules.LATE_FEE_PERCENT])
def test_percent_of_rounds_like_the_rule(engine: sa.Engine, percent: int) -> None:
    rng = random.Random(percent)
    rows = [(rng.choice([1, 1, 1, -1]) * _amount(rng),) for _ in range(CASES)]
    _agree(
        engine,
        rules.percent_of_sql("c0", percent),
        lambda x: percent_of(x, percent),
        rows,
    )


def test_minimum_payment_like_the_rule(engine: sa.Engine) -> None:
    rng = random.Random(5)
    rows = []
    for _ in range(CASES):
        principal, interest, fees, past = (_amount(rng) % 10**9 for _ in range(4))
        balance = rng.choice(
            [principal + interest + fees, -_amount(rng) % 10**6, _amount(rng) % 10**9]
        )
        rows.append((balance, principal, interest, fees, past))
    _agree(
        engine,
        rules.minimum_payment_sql("c0", "c1", "c2", "c3", "c4"),
        rules.minimum_payment,
        rows,
    )


def test_credit_balance_pays_a_debit_first_like_the_rule(engine: sa.Engine) -> None:
    rng = random.Random(3)
    rows = [(_amount(rng) % 10**9, _amount(rng) % 10**9) for _ in range(CASES)]
    _agree(engine, rules.from_credit_sql("c0", "c1"), min, rows)


def test_the_writer_refuses_entries_that_do_not_sum_to_the_posting(engine: sa.Engine) -> None:
    """`eod.write_postings` checks every row of its SELECT before writing anything."""
    source = (
        "SELECT @posting_id(s.account_id) AS posting_id, s.account_id, 'interest' AS type, "
        "s.amount, 'x' AS description, 0 AS e_credit, 0 AS e_purchase, 0 AS e_cash, "
        "s.e_interest, 0 AS e_fees FROM (SELECT 'acc_0001a' AS account_id, 500 AS amount, "
        "500 AS e_interest UNION ALL SELECT 'acc_0001b', 500, 499) s"
    )
    params = {
        "d": dt.date(2026, 12, 5),
        "now": dt.datetime(2026, 12, 5, tzinfo=dt.UTC),
        "ids": '{"acc_0001a": "pst_test_a", "acc_0001b": "pst_test_b"}',
    }
    with pytest.raises(ValueError, match="do not sum"), engine.begin() as conn:
        write_postings(conn, source, params)
    with engine.connect() as conn:
        written = conn.execute(
            sa.text("SELECT COUNT(*) FROM postings WHERE posting_id LIKE 'pst_test_%'")
        ).scalar_one()
    assert written == 0
