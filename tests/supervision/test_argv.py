"""to_argv: settings back into the flags a child process is started with; parsing them
gives the same settings."""

from __future__ import annotations

import contextlib
import os
import typing
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from movierec.cli import build_parser
from movierec.config import from_args
from movierec.supervision.argv import to_argv

_PARSER = build_parser()


def _parsed(command: str, argv: list[str]) -> typing.Any:
    return from_args(_PARSER.parse_args([command, *argv]))


@given(
    users=st.integers(1, 10**6),
    seed=st.integers(0, 2**31),
    days=st.none() | st.floats(0.01, 1e4, allow_nan=False),
    speed=st.floats(0, 1e6, allow_nan=False),
    start=st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)),
    faults=st.lists(st.sampled_from(["garbage=0.01", "truncated=0.02"]), max_size=2, unique=True),
    quiet=st.booleans(),
)
def test_to_argv_gives_back_the_same_settings(
    users: int,
    seed: int,
    days: float | None,
    speed: float,
    start: datetime,
    faults: list[str],
    quiet: bool,
) -> None:
    given_argv = ["--users", str(users), "--seed", str(seed), "--speed", repr(speed)]
    given_argv += ["--start", start.isoformat(), *[a for f in faults for a in ("--fault", f)]]
    given_argv += [*(["--days", repr(days)] if days is not None else []), *(["--quiet"] * quiet)]
    with _environment_cleared():
        settings = _parsed("simulate", given_argv)
        assert _parsed("simulate", to_argv(settings)) == settings


def test_to_argv_names_only_what_differs_from_the_defaults() -> None:
    with _environment_cleared():
        settings = _parsed("serve", ["--models", "m", "--port", "9000", "--poll", "1.0"])
        assert to_argv(settings) == ["--models", "m", "--port", "9000"]
        off = _parsed("ingest", ["--store", "s", "--source", "file://log"])
        assert "--follow" not in to_argv(off)
        assert "--follow" in to_argv(off.model_copy(update={"follow": True}))


@contextlib.contextmanager
def _environment_cleared() -> typing.Iterator[None]:
    """No MOVIEREC_* variable may leak into a comparison with the defaults."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("MOVIEREC_")}
    for key in saved:
        del os.environ[key]
    try:
        yield
    finally:
        os.environ.update(saved)
