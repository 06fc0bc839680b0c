"""pytest_execo.alarm: both alarms keep the same contract (the writer's thread sleeps on one)."""

import sys
import threading
import time

import pytest

from pytest_execo.alarm import ConditionAlarm, TimerfdAlarm, alarm

KINDS = [ConditionAlarm, TimerfdAlarm] if sys.platform == "linux" else [ConditionAlarm]


def waiter(ring):
    """A thread waiting on ``ring``; its list gets the time the wait returned."""
    returned = []
    thread = threading.Thread(target=lambda: (ring.wait(), returned.append(time.monotonic())))
    thread.start()
    return thread, returned


@pytest.mark.parametrize("kind", KINDS)
def test_wait_returns_once_the_last_deadline_set_passed(kind):
    ring = kind()
    start = time.monotonic()
    ring.set(start + 0.02)
    ring.set(start + 0.2)  # moved later before anyone waits
    ring.wait()
    assert time.monotonic() >= start + 0.2


@pytest.mark.parametrize("kind", KINDS)
def test_a_deadline_in_the_past_rings_at_once_and_wait_disarms(kind):
    ring = kind()
    ring.set(0.0)
    ring.wait()  # would block for ever if it did not ring
    thread, returned = waiter(ring)  # disarmed by the wait that returned
    thread.join(timeout=0.3)
    assert thread.is_alive() and not returned
    ring.set(time.monotonic())
    thread.join(timeout=60)
    assert returned


@pytest.mark.parametrize("kind", KINDS)
def test_a_sleeper_wakes_for_an_earlier_deadline_and_not_for_a_disarmed_one(kind):
    ring = kind()
    ring.set(time.monotonic() + 3600)
    thread, returned = waiter(ring)
    ring.set(None)  # disarmed while it sleeps
    thread.join(timeout=0.3)
    assert thread.is_alive() and not returned
    start = time.monotonic()
    ring.set(start + 0.05)  # earlier than the one it slept for
    thread.join(timeout=60)
    assert returned and start + 0.05 <= returned[0] < start + 60


@pytest.mark.skipif(sys.platform != "linux", reason="timerfd is Linux only")
def test_linux_gets_the_timerfd_alarm():
    assert isinstance(alarm(), TimerfdAlarm)
