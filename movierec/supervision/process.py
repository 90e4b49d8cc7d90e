"""One supervised child process: how to start it, when it is ready, how to stop it, and
what to do when it exits.

A child runs in its own session, so a Ctrl-C at the terminal reaches the supervisor
alone, which then stops the children in its own order (the site before what it feeds).
On Linux a child is also told to stop (SIGTERM) if the supervisor itself dies, so a
killed supervisor leaves no orphan holding the service's port.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

_PR_SET_PDEATHSIG = 1
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 30.0  # seconds before a restart, doubling per crash
STEADY = 60.0  # a child that ran this long before crashing restarts after BACKOFF_FIRST


@dataclass(frozen=True)
class ChildSpec:
    name: str
    argv: list[str]
    log: Path  # the child's stdout and stderr, appended across restarts
    ready_url: str | None = None  # answered with any HTTP status once the child is ready
    finishes: bool = False  # an exit with status 0 is the end of its work, not a crash
    # Answers 200 once the child's work is done while it stays up to serve what others
    # still need (the site's API for ingestion's last lookups); it is then finished too.
    done_url: str | None = None
    grace: float = 30.0  # seconds between the stop signal and SIGKILL
    env: dict[str, str] = field(default_factory=dict)


class Child:
    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.starts = 0
        self.restart_at: float | None = None
        self.backoff = BACKOFF_FIRST
        self.finished = False
        self._log: IO[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        self.spec.log.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.spec.log.open("ab")
        self.process = subprocess.Popen(
            self.spec.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.spec.env},
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
        )
        self.started_at = time.monotonic()
        self.starts += 1
        self.restart_at = None

    def exited(self) -> int | None:
        """The exit status once the child has exited (and was not yet seen to), else None."""
        if self.process is None or self.restart_at is not None or self.finished:
            return None
        return self.process.poll()

    def schedule_restart(self) -> float:
        """Plan a restart after a crash; the delay in seconds."""
        ran = time.monotonic() - self.started_at
        if ran >= STEADY:
            self.backoff = BACKOFF_FIRST
        delay = self.backoff
        self.backoff = min(self.backoff * 2, BACKOFF_MAX)
        self.restart_at = time.monotonic() + delay
        self._close_log()
        return delay

    def done(self) -> bool:
        """True once a running child answers its done URL with 200."""
        if self.spec.done_url is None or not self.running:
            return False
        try:
            with urllib.request.urlopen(self.spec.done_url, timeout=1.0) as answer:
                return bool(answer.status == 200)
        except (OSError, ValueError):  # HTTPError included: not done yet
            return False

    def due(self) -> bool:
        return self.restart_at is not None and time.monotonic() >= self.restart_at

    def wait_ready(self, timeout: float, stopping: Callable[[], bool]) -> None:
        """Return once the child answers its ready URL; RuntimeError if it exits first or
        does not answer within `timeout` seconds."""
        if self.spec.ready_url is None:
            return
        deadline = time.monotonic() + timeout
        while not stopping():
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.spec.name} exited with status {self.process.returncode} before it "
                    f"was ready; its log: {self.spec.log}"
                )
            if _answers(self.spec.ready_url):
                return
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"{self.spec.name} did not answer {self.spec.ready_url} within "
                    f"{timeout:g} s; its log: {self.spec.log}"
                )
            time.sleep(0.1)  # polling a readiness URL, not waiting in place of it

    def signal(self, sig: int = signal.SIGINT) -> None:
        if self.running:
            assert self.process is not None
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)

    def wait_stopped(self) -> int | None:
        """Wait up to the grace period, then kill; the exit status (None if never started)."""
        if self.process is None:
            return None
        try:
            status = self.process.wait(self.spec.grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            status = self.process.wait()
        self._close_log()
        return status

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0):
            return True
    except urllib.error.HTTPError:
        return True  # it answered, if only to say it has no model yet
    except (OSError, ValueError):
        return False


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
