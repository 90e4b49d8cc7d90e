#!/usr/bin/env python3
"""The coverage floor: a run below it fails, a run above it raises it.

Run with the project's virtualenv after the whole suite (scripts/test.sh does):

    .venv/bin/python scripts/coverage_floor.py [--report reports/coverage.json]
                                               [--floor .ci/coverage-floor]

It reads the total of coverage.py's JSON report (`totals.percent_covered`) and the floor,
one number such as `88.3`, from the committed file. Below the floor: exit 1, naming both.
At least 0.1 above it: the file is rewritten with the total rounded down to 0.1, and
committing it ratchets the floor up. The floor only rises: a test reads the file's git
history (tests/scripts/test_coverage_floor.py).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REPORT = ROOT / "reports" / "coverage.json"
DEFAULT_FLOOR = ROOT / ".ci" / "coverage-floor"


def read_floor(path: Path) -> float:
    """The floor in the file: one number, percent."""
    return float(path.read_text().strip())


def tenths_below(total: float) -> int:
    """The total rounded down to 0.1, in tenths (88.37 -> 883); the small epsilon keeps
    88.3 itself from becoming 882 in binary floating point."""
    return math.floor(total * 10 + 1e-9)


def shown(path: Path) -> str:
    """The path as a reader of the repository knows it."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def check(total: float, floor_file: Path) -> tuple[int, str]:
    """The exit status and the message for `total` against the floor in `floor_file`; the
    file is rewritten when the floor rises."""
    floor = read_floor(floor_file)
    floor_tenths = round(floor * 10)
    where = shown(floor_file)
    if total * 10 + 1e-9 < floor_tenths:
        return 1, (
            f"coverage: {total:.2f}% is below the floor of {floor:.1f}% ({where}); "
            "test the new code (reports/coverage/index.html marks every line not covered)"
        )
    reached = tenths_below(total)
    if reached >= floor_tenths + 1:
        floor_file.write_text(f"{reached / 10:.1f}\n")
        return 0, (
            f"coverage: {total:.2f}%; the floor rises from {floor:.1f}% to {reached / 10:.1f}% "
            f"({where} rewritten: commit it)"
        )
    return 0, f"coverage: {total:.2f}% (floor {floor:.1f}%)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", type=Path, default=DEFAULT_REPORT)
    parser.add_argument("--floor", type=Path, default=DEFAULT_FLOOR)
    args = parser.parse_args(argv)
    try:
        total = float(json.loads(args.report.read_text())["totals"]["percent_covered"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(f"coverage: no total in {args.report}: {error!r}", file=sys.stderr)
        return 1
    try:
        status, message = check(total, args.floor)
    except (OSError, ValueError) as error:
        print(f"coverage: no floor in {args.floor}: {error!r}", file=sys.stderr)
        return 1
    print(message, file=sys.stderr if status else sys.stdout)
    return status


if __name__ == "__main__":
    sys.exit(main())
