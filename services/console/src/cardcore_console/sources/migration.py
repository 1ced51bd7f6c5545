"""Migration runs, chunks and findings (the migration's published `progress` module), and the
CDC lag series (a placeholder until change data capture records its lag)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from cardcore_migration import progress
from cardcore_migration.progress import RunProgress


class MigrationSource:
    def __init__(self, control: sa.Engine) -> None:
        self._control = control

    def runs(self, limit: int = 100) -> list[RunProgress]:
        try:
            return progress.recent_runs(self._control, limit)
        except sa.exc.ProgrammingError:  # migration tables not created yet
            return []
        except sa.exc.OperationalError:
            return []

    def rule_counts(self, run_id: str) -> dict[str, int]:
        return progress.rule_counts(self._control, run_id)

    def rule_catalogue(self) -> dict[str, dict[str, Any]]:
        return progress.rule_catalogue()

    def report_path(self, run_id: str) -> Path | None:
        """The dry-run HTML report of a run, once the migration records where it wrote it.

        `migrate dry-run --html PATH` does not record PATH anywhere yet; until it does there is
        no link (the page says so) rather than a guessed file name.
        """
        return None

    def cdc_lag(self) -> list[tuple[dt.datetime, int, float]]:
        """(when, events behind, seconds behind), oldest first: CDC's lag over time.

        Empty until `cardcore migrate sync` (issue "The legacy CCS serves live traffic…") stores
        its lag; the chart reads this one function.
        """
        return []
