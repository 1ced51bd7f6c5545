"""The business-date cache: one read of the control database per expiry, however many threads
ask at that moment (every request of every service asks)."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import sqlalchemy as sa

from cardcore_kernel.control import BusinessCalendar, metadata


def test_threads_that_find_the_date_stale_read_it_once(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'control.db'}")
    metadata.create_all(engine)
    reads = 0

    @sa.event.listens_for(engine, "before_cursor_execute")
    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        nonlocal reads
        if statement.lstrip().upper().startswith("SELECT"):
            reads += 1

    calendar = BusinessCalendar(engine, ttl_seconds=60)
    calendar.open(dt.date(2026, 11, 25))
    start = threading.Barrier(16)
    seen: list[dt.date] = []

    def ask() -> None:
        start.wait()
        seen.append(calendar.current())

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [dt.date(2026, 11, 25)] * 16
    assert reads == 1
    calendar.open(dt.date(2026, 11, 26))  # opening a date makes the next ask read it
    assert calendar.current() == dt.date(2026, 11, 26)
    assert reads == 2
    engine.dispose()
