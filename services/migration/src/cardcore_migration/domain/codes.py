"""The data-quality rule codes the migration judges by (SPEC.md "Data-quality rules").

The table is part of the CCS contract (SPEC.md), so CCS publishes it in
`cardcore_legacy.ccs.rules`: the seed generator injects exactly these defects and the migration
detects them, from one definition.
"""

from __future__ import annotations

from cardcore_legacy.ccs.rules import ALL_CODES, ENTITIES, RULE_BY_CODE, RULES, Rule, is_reject

__all__ = ["ALL_CODES", "ENTITIES", "RULES", "RULE_BY_CODE", "Rule", "is_reject"]
