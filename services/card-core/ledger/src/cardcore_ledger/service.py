"""Compatibility: the pre-restructure `cardcore_ledger.service.Ledger(settings)`, for old callers.

Only batch's test kit still uses it (`Ledger(settings)`, `apply_events` with (event, state)
pairs). New code builds the use cases with `cardcore_ledger.deps.build_ledger` and calls
`cardcore_ledger.services.Ledger`. Delete this module once no caller is left.
"""

from __future__ import annotations

from typing import Any

from cardcore_kernel.settings import CardcoreSettings
from cardcore_ledger import services
from cardcore_ledger.deps import build_ledger
from cardcore_ledger.services import IdempotencyClaim, Outcome

__all__ = ["IdempotencyClaim", "Ledger", "Outcome"]


class Ledger(services.Ledger):
    def __init__(self, settings: CardcoreSettings) -> None:
        built = build_ledger(settings)
        super().__init__(built.shards, built.pans, built.vault, built.calendar, built.control)
        self.settings = settings

    def apply_events(self, events: list[Any]) -> int:
        """Accepts the old (event, state model) pairs as well as `services.StateEvent`s."""
        converted = []
        for item in events:
            if isinstance(item, services.StateEvent):
                converted.append(item)
                continue
            event, state = item
            kind = {"account.state": services.AccountState, "card.state": services.CardState}
            copied = None if state is None else kind[event.type](**state.model_dump())
            converted.append(services.StateEvent(event.event_id, event.type, event.version, copied))
        return super().apply_events(converted)
