"""The switch machinery's promises, tried against a plan whose sides are in memory (or a file).

The sides are fakes on purpose: what is under test is the sequence, the write-ahead record in
the real control database (SQLite and PostgreSQL) and what happens when a step fails, times out
or the driving process dies — not any one kind of side. Each kind (cutover, resharding) tests
its own plan against real services.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from cardcore_kernel.db import control_engine
from cardcore_kernel.switchover import (
    ABORTED,
    DONE,
    REFUSED,
    BucketRange,
    ReleaseStats,
    Switcher,
    SwitchError,
    VerifyOutcome,
    get_switch,
    range_switch_locks_table,
    switch_status,
)

STEPS = [
    "precheck",
    "freeze",
    "drain",
    "source_position",
    "wait_applied",
    "verify",
    "flip",
    "after_flip",
    "release",
]


class Killed(BaseException):
    """Stands for the process dying mid-step: nothing after it runs, no handler sees it."""


@dataclass
class FakeSides:
    kind: str = "cutover"
    source: str = "legacy"
    target: str = "core"
    routes: dict[int, str] = field(default_factory=dict)
    frozen: set[int] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)
    released_to: list[str] = field(default_factory=list)
    refuse: list[str] = field(default_factory=list)
    kill_at: str | None = None
    raise_at: str | None = None
    delay: dict[str, float] = field(default_factory=dict)
    drained: bool = True
    applied: bool = True
    verified: bool = True

    def side_of(self, bucket: int) -> str:
        return self.routes.get(bucket, self.source)

    def _step(self, name: str) -> None:
        self.calls.append(name)
        time.sleep(self.delay.get(name, 0.0))
        if self.kill_at == name:
            self.kill_at = None  # a restarted process does not die at the same place again
            raise Killed(name)
        if self.raise_at == name:
            raise RuntimeError(f"{name} broke")

    def precheck(self, buckets: BucketRange) -> list[str]:
        self._step("precheck")
        return list(self.refuse)

    def freeze(self, buckets: BucketRange, ttl: float) -> None:
        self.frozen.update(buckets.buckets())
        self._step("freeze")

    def drain(self, buckets: BucketRange, timeout: float) -> bool:
        self._step("drain")
        return self.drained

    def source_position(self) -> str:
        self._step("source_position")
        return "mariadb-bin.000001:4242"

    def wait_applied(self, position: str, timeout: float) -> bool:
        self._step("wait_applied")
        return self.applied

    def verify(self, buckets: BucketRange, position: str) -> VerifyOutcome:
        self._step("verify")
        return VerifyOutcome(self.verified, {"rows": 10, "mismatched": 0 if self.verified else 1})

    def flip(self, buckets: BucketRange) -> None:
        for bucket in buckets.buckets():
            self.routes[bucket] = self.target
        self._step("flip")

    def after_flip(self, buckets: BucketRange) -> None:
        self._step("after_flip")

    def release(self, buckets: BucketRange, to: str) -> ReleaseStats:
        self._step("release")
        self.frozen.difference_update(buckets.buckets())
        self.released_to.append(to)
        return ReleaseStats(held=3, longest_wait_ms=12.5)


def _locks(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(range_switch_locks_table)).one()[
            0
        ]


@pytest.fixture
def control(stack: object) -> sa.Engine:
    return control_engine()


RANGE = BucketRange(0, 255)


def test_a_switch_moves_the_range_and_records_every_step(control: sa.Engine) -> None:
    sides = FakeSides()
    record = Switcher(control, sides).run(RANGE, max_freeze=1.0)
    assert record.state == DONE, record
    assert sides.calls == STEPS
    assert sides.released_to == ["core"]
    assert {sides.side_of(b) for b in RANGE.buckets()} == {"core"}
    assert sides.side_of(256) == "legacy"  # nothing outside the range moved
    assert not sides.frozen
    assert record.position == "mariadb-bin.000001:4242"
    assert record.detail["verify"] == {"rows": 10, "mismatched": 0}
    assert record.detail["held_requests"] == 3
    assert record.freeze_seconds is not None and 0 < record.freeze_seconds < 1.0
    assert _locks(control) == 0
    assert [r.switch_id for r in switch_status(control, "cutover")] == [record.switch_id]


def test_a_precheck_refusal_stops_nothing(control: sa.Engine) -> None:
    sides = FakeSides(refuse=["CDC lag 12 s over the bound of 5 s"])
    record = Switcher(control, sides).run(RANGE)
    assert record.state == REFUSED
    assert record.reason == "CDC lag 12 s over the bound of 5 s"
    assert sides.calls == ["precheck"]
    assert not sides.routes and not sides.frozen
    assert _locks(control) == 0


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"drained": False}, "did not drain"),
        ({"applied": False}, "catch-up to mariadb-bin.000001:4242 did not finish"),
        ({"verified": False}, "verify found differences"),
        ({"raise_at": "freeze"}, "RuntimeError: freeze broke"),
        ({"raise_at": "verify"}, "RuntimeError: verify broke"),
        ({"delay": {"verify": 0.3}}, "would exceed max-freeze"),
    ],
    ids=["drain", "catch-up", "verify", "freeze-raises", "verify-raises", "too-slow"],
)
def test_any_failure_before_the_flip_aborts_back_to_the_source(
    control: sa.Engine, change: dict[str, object], reason: str
) -> None:
    sides = FakeSides(**change)  # type: ignore[arg-type]
    record = Switcher(control, sides).run(RANGE, max_freeze=0.2)
    assert record.state == ABORTED
    assert reason in (record.reason or "")
    assert "flip" not in sides.calls
    assert sides.released_to == ["legacy"]
    assert not sides.routes and not sides.frozen
    assert _locks(control) == 0


@pytest.mark.parametrize("step", STEPS[1:])
def test_a_switch_killed_at_any_step_is_visible_and_finishes_consistently(
    control: sa.Engine, step: str
) -> None:
    sides = FakeSides(kill_at=step)
    with pytest.raises(Killed):
        Switcher(control, sides, owner="dead").run(RANGE)
    interrupted = switch_status(control)[0]
    assert not interrupted.ended
    assert _locks(control) == RANGE.high + 1  # still holds its buckets

    flipped = STEPS.index(step) >= STEPS.index("flip")
    with pytest.raises(SwitchError, match="being driven by dead"):
        Switcher(control, sides, owner="impatient").resume(interrupted.switch_id)
    record = Switcher(control, sides, owner="next", lease_seconds=0.0).resume(interrupted.switch_id)
    if flipped:
        assert record.state == DONE
        assert {sides.side_of(b) for b in RANGE.buckets()} == {"core"}
        assert sides.released_to[-1] == "core"
    else:
        assert record.state == ABORTED
        assert not sides.routes
        assert sides.released_to[-1] == "legacy"
    assert not sides.frozen
    assert _locks(control) == 0


def test_abort_after_the_flip_is_refused(control: sa.Engine) -> None:
    sides = FakeSides(kill_at="after_flip")
    with pytest.raises(Killed):
        Switcher(control, sides, owner="dead").run(RANGE)
    switch_id = switch_status(control)[0].switch_id
    with pytest.raises(SwitchError, match="already flipped 0-255 to core"):
        Switcher(control, sides, owner="op", lease_seconds=0.0).abort(switch_id)
    assert get_switch(control, switch_id).state == "flipped"


def test_run_finishes_an_interrupted_switch_of_the_same_range_first(control: sa.Engine) -> None:
    sides = FakeSides(kill_at="verify")
    with pytest.raises(Killed):
        Switcher(control, sides, owner="dead").run(RANGE)
    record = Switcher(control, sides, owner="next", lease_seconds=0.0).run(RANGE)
    assert record.state == DONE
    states = sorted(r.state for r in switch_status(control))
    assert states == [ABORTED, DONE]
    assert sides.released_to == ["legacy", "core"]


def test_overlapping_ranges_are_refused_while_one_is_unfinished(control: sa.Engine) -> None:
    sides = FakeSides(kill_at="wait_applied")
    with pytest.raises(Killed):
        Switcher(control, sides, owner="dead").run(RANGE)
    held = switch_status(control)[0]
    other = FakeSides()
    with pytest.raises(SwitchError, match=f"overlap switch {held.switch_id}"):
        Switcher(control, other).run(BucketRange(200, 300))
    assert other.calls == []
    # a disjoint range goes ahead meanwhile
    assert Switcher(control, other).run(BucketRange(256, 300)).state == DONE


def test_two_switches_racing_for_the_same_buckets_take_them_once(control: sa.Engine) -> None:
    """The lock rows, not the pre-read, decide: a racer that passed the pre-read still fails."""
    first = Switcher(control, FakeSides(), owner="a")
    switch_id = first._start(RANGE, 1.0)
    with pytest.raises(SwitchError, match=f"held by {switch_id}"):
        Switcher(control, FakeSides(), owner="b")._start(BucketRange(255, 300), 1.0)
    assert _locks(control) == RANGE.high + 1


def test_bucket_ranges_are_checked() -> None:
    assert str(BucketRange.parse("0-255")) == "0-255"
    assert str(BucketRange.parse(" 7 ")) == "7"
    for bad in ["x", "5-2", "0-1024", "-1"]:
        with pytest.raises(ValueError):
            BucketRange.parse(bad)


DRIVER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from cardcore_kernel.db import control_engine
    from cardcore_kernel.switchover import BucketRange, ReleaseStats, Switcher, VerifyOutcome

    state_file, hang_in = Path(sys.argv[1]), sys.argv[2]
    owner = sys.argv[3] if len(sys.argv) > 3 else "child"

    class FileSides:
        kind, source, target = "cutover", "legacy", "core"
        def _save(self, **change):
            data = json.loads(state_file.read_text()) if state_file.exists() else {}
            data.update(change)
            partial = state_file.with_suffix(".tmp")
            partial.write_text(json.dumps(data))
            partial.replace(state_file)  # readers never see a half-written file
        def _maybe_hang(self, name):
            if name == hang_in:
                self._save(hanging=name)
                time.sleep(600)
        def precheck(self, b): return []
        def freeze(self, b, ttl): self._save(frozen=True); self._maybe_hang("freeze")
        def drain(self, b, timeout): self._maybe_hang("drain"); return True
        def source_position(self): return "pos-1"
        def wait_applied(self, p, timeout): self._maybe_hang("wait_applied"); return True
        def verify(self, b, p): self._maybe_hang("verify"); return VerifyOutcome(True)
        def flip(self, b): self._save(route="core"); self._maybe_hang("flip")
        def after_flip(self, b): self._maybe_hang("after_flip")
        def release(self, b, to): self._save(frozen=False, released_to=to); return ReleaseStats()

    Switcher(control_engine(), FileSides(), owner=None if owner == "-" else owner).run(
        BucketRange(0, 255), 600.0
    )
    """
)


def _kill_driver_in(tmp_path: Path, hang_in: str, *owner: str) -> None:
    state_file = tmp_path / "sides.json"
    child = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(state_file), hang_in, *owner], env=dict(os.environ)
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if state_file.exists() and json.loads(state_file.read_text()).get("hanging"):
                break
            assert child.poll() is None, "the driver exited before it reached the step"
            time.sleep(0.05)
        else:
            pytest.fail(f"the driver never reached {hang_in}")
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()


@pytest.mark.parametrize(("hang_in", "ends"), [("verify", ABORTED), ("after_flip", DONE)])
def test_kill_9_of_the_driving_process(
    control: sa.Engine, tmp_path: Path, hang_in: str, ends: str
) -> None:
    """A real process is SIGKILLed mid-switch; another one finishes it from the record alone."""
    _kill_driver_in(tmp_path, hang_in)
    interrupted = switch_status(control)[0]
    assert interrupted.owner == "child" and not interrupted.ended

    sides = FakeSides(routes={b: "core" for b in RANGE.buckets()} if ends == DONE else {})
    record = Switcher(control, sides, owner="operator", lease_seconds=0.0).resume(
        interrupted.switch_id
    )
    assert record.state == ends
    assert sides.released_to == (["core"] if ends == DONE else ["legacy"])
    assert record.freeze_seconds is not None and record.freeze_seconds > 0
    assert _locks(control) == 0


def test_a_dead_driver_on_this_host_is_taken_over_without_waiting_out_its_lease(
    control: sa.Engine, tmp_path: Path
) -> None:
    """The default owner names host and pid: once that process is gone, the lease is moot; a
    live owner's lease still holds."""
    _kill_driver_in(tmp_path, "verify", "-")
    interrupted = switch_status(control)[0]
    assert not interrupted.ended and f":{os.getpid()}:" not in (interrupted.owner or "")
    with pytest.raises(SwitchError, match="being driven by"):  # a live owner keeps its lease
        Switcher(control, FakeSides(), owner=f"{socket.gethostname()}:{os.getpid()}:x").resume(
            Switcher(control, FakeSides(), owner="live")._start(BucketRange(300, 301), 1.0)
        )
    record = Switcher(control, FakeSides()).resume(interrupted.switch_id)  # default lease 10 s
    assert record.state == ABORTED
