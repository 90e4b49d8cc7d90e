"""Incident drills on a running site: switch the site API's faults through its control
endpoint (`movierec site --api-control`, or `simulate --api-control`), hold them, and
put them back, writing a timeline of what was done and when — the evidence a postmortem
starts from (docs/responsible.md, "Incident drill").

    python -m movierec_sim.drill --api http://127.0.0.1:8080 --kind outage --seconds 600

Kinds: `outage` (every API request answered 503), `hang` (every request left unanswered
until the client gives up), `slow` (two seconds added to every answer).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import urllib.request
from datetime import UTC, datetime
from typing import Any

KINDS: dict[str, dict[str, Any]] = {
    "outage": {"error_share": 1.0, "error_statuses": [503]},
    "hang": {"hang_share": 1.0, "hang_max_s": 30.0},
    "slow": {"latency_ms": 2000.0, "latency_share": 1.0},
}


def _post(api: str, changes: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        api.rstrip("/") + "/_control/faults",
        data=json.dumps(changes).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        result: dict[str, Any] = json.loads(answer.read())
    return result


def _get(api: str) -> dict[str, Any]:
    with urllib.request.urlopen(api.rstrip("/") + "/_control/faults", timeout=10) as answer:
        result: dict[str, Any] = json.loads(answer.read())
    return result


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Drill:
    """One incident: `start()` switches the faults on, `end()` restores what was there."""

    def __init__(self, api: str, kind: str = "outage") -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown drill {kind!r}; known: {', '.join(KINDS)}")
        self.api, self.kind = api, kind
        self.timeline: list[dict[str, Any]] = []
        self._before: dict[str, Any] | None = None

    def start(self) -> None:
        self._before = _get(self.api)
        _post(self.api, KINDS[self.kind])
        self.timeline.append({"time": _now(), "event": "incident started", "kind": self.kind})

    def end(self) -> None:
        if self._before is None:
            raise RuntimeError("the drill was not started")
        restore = {key: self._before[key] for key in KINDS[self.kind]}
        _post(self.api, restore)
        self.timeline.append({"time": _now(), "event": "incident ended", "kind": self.kind})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m movierec_sim.drill", description=__doc__)
    parser.add_argument("--api", required=True, help="the site API's base URL")
    parser.add_argument("--kind", choices=sorted(KINDS), default="outage")
    parser.add_argument("--seconds", type=float, default=600.0, help="how long it lasts")
    args = parser.parse_args(argv)
    drill = Drill(args.api, args.kind)
    try:
        drill.start()
    except OSError as error:
        print(f"drill: the site API's control endpoint did not answer: {error}", file=sys.stderr)
        return 1
    print(json.dumps(drill.timeline[-1]), flush=True)
    stop = threading.Event()
    try:
        stop.wait(args.seconds)
    except KeyboardInterrupt:
        pass
    finally:
        drill.end()
    print(json.dumps(drill.timeline[-1]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
