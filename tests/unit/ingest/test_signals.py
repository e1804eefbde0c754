"""SignalRelay: real signals to this process; the action runs off the main thread."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator

import pytest

from ingest.signals import SignalRelay


@pytest.fixture
def restore_sigusr() -> Iterator[None]:
    previous = {s: signal.getsignal(s) for s in (signal.SIGUSR1, signal.SIGUSR2)}
    yield
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def test_the_action_runs_on_the_relay_thread_while_main_waits_on_the_event(
    restore_sigusr: None,
) -> None:
    done = threading.Event()
    ran_on: list[str] = []

    def stop() -> None:
        ran_on.append(threading.current_thread().name)
        done.set()

    SignalRelay({signal.SIGUSR1: stop}).install()
    os.kill(os.getpid(), signal.SIGUSR1)
    assert done.wait(10)
    assert ran_on == ["signal-relay"]


def test_a_failing_action_does_not_end_the_relay(restore_sigusr: None) -> None:
    done = threading.Event()

    def broken() -> None:
        raise RuntimeError("reload failed")

    SignalRelay({signal.SIGUSR1: broken, signal.SIGUSR2: done.set}).install()
    os.kill(os.getpid(), signal.SIGUSR1)
    os.kill(os.getpid(), signal.SIGUSR2)
    assert done.wait(10)
