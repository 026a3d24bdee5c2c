"""Retry pacing (full jitter, Retry-After) and the single-flight lock, across threads and
processes."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from mobile_sync.client.backoff import Backoff, parse_retry_after
from mobile_sync.client.lock import SyncLock

REPO = Path(__file__).resolve().parents[2]


def test_full_jitter_draws_below_a_doubling_capped_ceiling():
    draws = iter([1.0, 1.0, 1.0, 1.0, 1.0, 0.25])
    backoff = Backoff(base_s=1.0, cap_s=5.0, random=lambda: next(draws))
    ceilings = [backoff.next_delay() for _ in range(5)]
    assert ceilings == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff.next_delay() == pytest.approx(5.0 * 0.25)
    backoff.reset()
    assert backoff.failures == 0


def test_retry_after_wins_over_a_shorter_draw_and_a_longer_draw_wins_over_it():
    assert Backoff(random=lambda: 0.0).next_delay(retry_after_s=7.0) == 7.0
    long_draw = Backoff(base_s=10.0, cap_s=60.0, random=lambda: 1.0)
    assert long_draw.next_delay(retry_after_s=3.0) == 10.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("120", 120.0), ("0", 0.0), (None, None), ("", None), ("soon", None)],
    ids=["seconds", "zero", "absent", "empty", "garbage"],
)
def test_retry_after_in_seconds(header, seconds):
    assert parse_retry_after(header) == seconds


def test_retry_after_as_an_http_date():
    now = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    earlier = format_datetime(now - timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(later, now=now) == 90.0
    assert parse_retry_after(earlier, now=now) == 0.0


def test_a_second_thread_is_told_the_lock_is_held(tmp_path):
    store = tmp_path / "s.sqlite3"
    outcomes: list[bool] = []
    with SyncLock(store).held() as first:
        thread = threading.Thread(target=lambda: outcomes.append(_try(store)))
        thread.start()
        thread.join(10)
        assert first is True
    assert outcomes == [False]
    assert _try(store) is True  # released on exit


def _try(store: Path) -> bool:
    with SyncLock(store).held() as acquired:
        return acquired


HOLD = (
    "import sys\n"
    "from pathlib import Path\n"
    "from mobile_sync.client.lock import SyncLock\n"
    "with SyncLock(Path(sys.argv[1])).held() as ok:\n"
    "    print('held' if ok else 'busy', flush=True)\n"
    "    sys.stdin.readline()\n"
)


def _other_process(store: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", HOLD, str(store)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def test_another_process_holding_the_lock_file_keeps_this_one_out(tmp_path):
    store = tmp_path / "s.sqlite3"
    with _other_process(store) as holder:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        assert _try(store) is False
        holder.communicate("\n", timeout=10)
    assert holder.returncode == 0
    assert _try(store) is True


def test_this_process_holding_the_lock_keeps_another_process_out(tmp_path):
    store = tmp_path / "s.sqlite3"
    with SyncLock(store).held() as acquired, _other_process(store) as other:
        assert acquired
        assert other.stdout is not None
        assert other.stdout.readline().strip() == "busy"
        other.communicate("\n", timeout=10)
