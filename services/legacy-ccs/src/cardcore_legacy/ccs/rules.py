"""The CCS data-quality rule codes (SPEC.md "Data-quality rules"), in the spec's order.

Published by CCS because SPEC.md defines them with its tables: the seed generator injects these
defects (and records which, as ground truth) and the migration worker detects them.

Order matters: a record takes the FIRST applicable REJECT of its entity, so each entity's list
below is exactly the order of the spec's table. X01 (a rejected parent) precedes everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Action = Literal["REJECT", "FIX", "WARN"]

ENTITIES = ("customer", "account", "card", "transaction", "authorization", "statement")


@dataclass(frozen=True)
class Rule:
    code: str
    entity: str
    action: Action
    meaning: str


RULES: tuple[Rule, ...] = (
    Rule("C01", "customer", "REJECT", "CERT_NO blank"),
    Rule("C02", "customer", "WARN", "CERT_TP 01 and CERT_NO not a valid resident ID"),
    Rule("C03", "customer", "FIX", "CUST_NM has leading/trailing spaces: trimmed"),
    Rule("C04", "customer", "FIX", "MOBILE valid after normalizing: stored normalized"),
    Rule("C05", "customer", "WARN", "MOBILE not valid after normalizing: stored as no mobile"),
    Rule("C06", "customer", "WARN", "another customer has the same CERT_TP and CERT_NO"),
    Rule("C07", "customer", "FIX", "BIRTH_DT not a real date: stored as unknown"),
    Rule("A01", "account", "REJECT", "CUST_NO not found in CCS_CUST"),
    Rule("A02", "account", "REJECT", "balances inconsistent"),
    Rule("A03", "account", "REJECT", "CREDIT_LMT <= 0"),
    Rule("A04", "account", "REJECT", "CYCLE_DAY outside 1-28"),
    Rule("A05", "account", "REJECT", "OPEN_DT not a real date"),
    Rule("A06", "account", "WARN", "ACCT_STS C and CUR_BAL != 0"),
    Rule("A07", "account", "WARN", "DAILY_RATE > 0.000500"),
    Rule("K01", "card", "REJECT", "CARD_NO fails Luhn or is not 16/19 digits"),
    Rule("K02", "card", "REJECT", "ACCT_NO not found in CCS_ACCT"),
    Rule("K03", "card", "REJECT", "EXP_YYMM not a valid YYMM"),
    Rule("K04", "card", "REJECT", "CUST_NO not found in CCS_CUST"),
    Rule("K05", "card", "FIX", "active-like card expired before the as-of month: expired"),
    Rule("T01", "transaction", "REJECT", "TXN_CD not in the code table"),
    Rule("T02", "transaction", "REJECT", "DC_FLG contradicts TXN_CD"),
    Rule("T03", "transaction", "REJECT", "CCY_CD is not 156"),
    Rule("T04", "transaction", "REJECT", "TXN_DT/POST_DT not real, or POST_DT < TXN_DT"),
    Rule("T05", "transaction", "REJECT", "ACCT_NO not found in CCS_ACCT"),
    Rule("T06", "transaction", "WARN", "another transaction of the account has the same REF_NO"),
    Rule("H01", "authorization", "REJECT", "ACCT_NO or CARD_NO not found"),
    Rule("H02", "authorization", "FIX", "open hold expired before the as-of date: expired"),
    Rule("S01", "statement", "REJECT", "ACCT_NO not found in CCS_ACCT"),
    Rule("X01", "any", "REJECT", "its customer, account or card was rejected"),
    Rule("F01", "archive file", "REJECT", "archive extract file unreadable or inconsistent"),
)

RULE_BY_CODE = {rule.code: rule for rule in RULES}
ALL_CODES = tuple(rule.code for rule in RULES)


def is_reject(code: str) -> bool:
    return RULE_BY_CODE[code].action == "REJECT"
