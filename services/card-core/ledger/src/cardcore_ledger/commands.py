"""Compatibility: the old names of the ledger's wire types (now `cardcore_ledger.api.models`).

Only batch's test kit still imports these. Delete this module once no caller is left.
"""

from cardcore_ledger.api.models import AccountStateIn as AccountState
from cardcore_ledger.api.models import AuthorizationIn as Authorize
from cardcore_ledger.api.models import CardStateIn as CardState
from cardcore_ledger.api.models import ClearingIn as Clear
from cardcore_ledger.api.models import CommandIn as Command
from cardcore_ledger.api.models import EventBatchIn as EventBatch
from cardcore_ledger.api.models import EventIn as Event
from cardcore_ledger.api.models import RefundIn as Refund
from cardcore_ledger.api.models import RepaymentIn as Repay
from cardcore_ledger.api.models import ReversalIn as Reverse

__all__ = [
    "AccountState",
    "Authorize",
    "CardState",
    "Clear",
    "Command",
    "Event",
    "EventBatch",
    "Refund",
    "Repay",
    "Reverse",
]
