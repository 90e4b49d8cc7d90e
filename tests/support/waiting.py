"""Waiting on a condition with a deadline: the one way tests synchronise with threads,
servers and subprocesses (never a bare sleep standing in for "it has happened by now")."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest


def wait_until(
    condition: Callable[[], object],
    timeout: float = 60.0,
    every: float = 0.05,
    what: str = "the condition",
) -> None:
    """Poll `condition` until it is true; fail the test naming `what` once `timeout` passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)
