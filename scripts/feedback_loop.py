"""The feedback loop over many simulated days, measured per arm and damped by exploration.

    .venv/bin/python scripts/feedback_loop.py [--dir DIR] [--users 3000] [--movies 500]
        [--visits 1.0] [--days 24] [--explore-slots 4] [--seed 1] [--window 4]

One simulated world, its users split in three arms of equal share for the whole run:

    popular   the popularity model, retrained every day
    model     the model training picks every day (its winner on held-out data)
    explore   the same version as `model`, answering with `--explore-slots` of its 20
              positions drawn from the long tail (serving/explore.py)

Every step is the real command, as a person would run it: `movierec site` (the API
ingestion asks about movies) and `movierec serve` run throughout; then day by day
`movierec simulate --state --days 1` (the site's users calling the service), `movierec
ingest`, `movierec train` (every kind, no search) on everything so far, and `movierec
experiment start` with the day's versions, keeping the first day's split of users
(`--split-of`), so each arm's users live with their arm's recommender all along and the
loop can close. The first day runs before any model exists (every call fails): the
"before" of every arm. The arms use the day's winner whether or not the release gate
would have promoted it (each day says which).

At the end, from the store and the answer log: per day and arm the concentration of what
was recommended and watched (Gini, top-1% share, coverage; movierec/online/loop.py) and
conversion within 30 minutes (movierec/online/figures.py). Writes DIR/feedback_loop.json
and DIR/feedback_loop.html (inline SVG), prints the summary: each arm's mean over the first
and the last `--window` days, and exploration's cost to conversion over all days.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from movierec.online import stats  # noqa: E402
from movierec.online.figures import online_report  # noqa: E402
from movierec.online.loop import conversion_by_day, loop_report_by_arm  # noqa: E402
from movierec.registry.experiments import answer_log_dir  # noqa: E402
from scripts.feedback_loop_page import write_page  # noqa: E402

ARMS = ("popular", "model", "explore")
CONVERSION = "conversion@30m"


def log(message: str) -> None:
    print(f"feedback_loop: {message}", file=sys.stderr, flush=True)


def movierec(*args: str) -> str:
    """Run one movierec command to its end; its stdout (a failure stops the study)."""
    done = subprocess.run(
        [sys.executable, "-m", "movierec.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise SystemExit(f"movierec {args[0]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition: Any, what: str, seconds: float = 120.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise SystemExit(f"gave up waiting for {what}")


def health(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
            return json.loads(response.read())
    except OSError as error:
        body = getattr(error, "read", lambda: b"{}")()
        return json.loads(body or b"{}")


class Study:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.dir: Path = args.dir
        self.store, self.models = self.dir / "store", self.dir / "models"
        self.stream = f"file://{self.dir / 'log'}"
        self.world = [
            f"--users={args.users}", f"--movies={args.movies}", f"--seed={args.seed}",
            f"--mean-visits-per-day={args.visits}",
        ]  # fmt: skip
        self.processes: list[subprocess.Popen] = []
        self.seconds: dict[str, float] = {}
        self.first_experiment: str | None = None

    def timed(self, step: str, *args: str) -> str:
        started = time.monotonic()
        out = movierec(*args)
        self.seconds[step] = self.seconds.get(step, 0.0) + time.monotonic() - started
        return out

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        api = free_port()
        self.api = f"http://127.0.0.1:{api}"
        self._spawn("site", "site", *self.world, f"--port={api}")
        wait_for(lambda: _get_ok(f"{self.api}/user/1"), "the site's API")
        self.models.mkdir(parents=True, exist_ok=True)
        serve = self._spawn(
            "serve", "serve", "--models", str(self.models), "--store", str(self.store),
            "--port", "0", "--poll", "0.2",
        )  # fmt: skip
        found = wait_for(
            lambda: re.search(r"listening on (127\.0\.0\.1:\d+)", serve.read_text()),
            "`movierec serve` to listen",
        )
        self.service = f"http://{found.group(1)}"

    def _spawn(self, name: str, *args: str) -> Path:
        err = self.dir / f"{name}.log"
        with err.open("wb") as handle:
            self.processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "movierec.cli", *args],
                    stdout=subprocess.DEVNULL,
                    stderr=handle,
                    cwd=ROOT,
                )
            )
        return err

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()

    def day(self, n: int) -> dict[str, Any]:
        """Simulate day n against the service, ingest it, train on everything so far and
        start the next day's experiment; the day's record."""
        started = time.monotonic()
        self.timed(
            "simulate", "simulate", *self.world, "--state", str(self.dir / "site"),
            "--days", "1", "--stream", self.stream, "--api-port", "0",
            "--service", self.service, "--quiet",
        )  # fmt: skip
        self.timed(
            "ingest", "ingest", "--source", self.stream, "--store", str(self.store),
            "--api", self.api, "--api-rate-limit", "0", "--quiet",
        )  # fmt: skip
        if n == self.args.days:  # the last day: nothing more to answer
            log(f"day {n} done in {time.monotonic() - started:.1f} s")
            return {"day": n, "seconds": round(time.monotonic() - started, 2)}
        trained = json.loads(
            self.timed(
                "train",
                "train",
                "--store",
                str(self.store),
                "--models",
                str(self.models),
                "--budget",
                "0",
                "--quiet",
            )
        )
        model = trained["versions"][trained["winner"]]
        popular = trained["versions"]["popularity"]
        experiment = self.experiment(popular, model)
        self.wait_for_plan(experiment)
        record = {
            "day": n,  # simulated; the versions below were trained after it, for day n + 1
            "answers_day": n + 1,
            "winner": trained["winner"],
            "promoted": bool(trained.get("promoted")),
            "versions": {"popular": popular, "model": model, "explore": model},
            "experiment": experiment,
            "seconds": round(time.monotonic() - started, 2),
        }
        log(
            f"day {n} done in {record['seconds']:.1f} s: next day's model {trained['winner']}"
            f" ({'promoted' if record['promoted'] else 'not promoted by the gate'})"
        )
        return record

    def experiment(self, popular: str, model: str) -> str:
        share = 1 / 3
        shares = [share, share, 1 - 2 * share]
        versions = (popular, model, model)
        arms = [f"--arm={a}={v}:{s!r}" for a, v, s in zip(ARMS, versions, shares, strict=True)]
        split = ["--split-of", self.first_experiment] if self.first_experiment else []
        out = self.timed(
            "experiment", "experiment", "start", "--models", str(self.models), *arms,
            f"--explore=explore={self.args.explore_slots}", *split,
        )  # fmt: skip
        experiment = json.loads(out)["id"]
        self.first_experiment = self.first_experiment or experiment
        return experiment

    def wait_for_plan(self, experiment: str) -> None:
        started = time.monotonic()
        wait_for(
            lambda: health(self.service).get("experiment", {}).get("id") == experiment,
            f"the service to answer from experiment {experiment}",
        )
        self.seconds["wait"] = self.seconds.get("wait", 0.0) + time.monotonic() - started


def _get_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def figures(study: Study, days: list[dict[str, Any]]) -> dict[str, Any]:
    """Per arm and day: concentration and conversion; the summary of start and end."""
    answers = answer_log_dir(study.models)
    loop = loop_report_by_arm(study.store, answers)
    online = online_report(
        study.store, study.models, state=study.dir / "online", final=True, answers=answers
    )
    conversion = conversion_by_day(online)
    arms: dict[str, Any] = {}
    for arm in ARMS:
        by_day = {c["day"]: c for c in conversion.get(arm, [])}
        rows = []
        for d in loop["arms"].get(arm, {}).get("days", []):
            c = by_day.get(d["day"], {})
            shown = d["recommended"]["lists"] > 0  # none on day 0: no figure, not a zero
            rows.append(
                {
                    "day": d["day"],
                    "recommended_gini": d["recommended"]["gini"] if shown else None,
                    "recommended_top1_share": d["recommended"]["top1_share"] if shown else None,
                    "coverage": d["recommended"]["coverage"] if shown else None,
                    "lists": d["recommended"]["lists"],
                    "watched_gini": d["watched"]["gini"],
                    "watched_top1_share": d["watched"]["top1_share"],
                    "sessions": d["watched"]["total"],
                    "judged": c.get("judged", 0),
                    "followed": c.get("followed", 0),
                    "conversion": c.get("conversion"),
                }
            )
        arms[arm] = {"users": loop["arms"].get(arm, {}).get("users", 0), "days": rows}
    return {
        "arms": arms,
        "summary": summary(arms, study.args.window),
        "loop_warnings": loop["warnings"],
        "online_warnings": online["warnings"],
        "users_in_several_arms": loop["users_in_several_arms"],
        "catalogue": loop["catalogue"],
    }


def summary(arms: dict[str, Any], window: int) -> dict[str, Any]:
    """Each arm's day 0 (before any model), its first and last `window` days with a model
    (means), and exploration against the model on conversion pooled over every day."""
    keys = (
        "recommended_gini", "recommended_top1_share", "coverage", "watched_gini",
        "watched_top1_share", "conversion",
    )  # fmt: skip
    out: dict[str, Any] = {}
    for arm, data in arms.items():
        before, served = data["days"][:1], data["days"][1:]
        out[arm] = {
            "before": {k: before[0][k] for k in keys if before[0][k] is not None}
            if before
            else None,
            "start": _means(served[:window], keys),
            "end": _means(served[-window:], keys),
        }
    pooled = {
        arm: (
            sum(d["followed"] for d in arms[arm]["days"]),
            sum(d["judged"] for d in arms[arm]["days"]),
        )
        for arm in arms
    }
    (s_c, n_c), (s_t, n_t) = pooled["model"], pooled["explore"]
    test = stats.two_proportions(s_c, n_c, s_t, n_t, 0.05, 0.05, 0.8)
    out["explore_vs_model"] = {
        "conversion": {arm: _share(*pooled[arm]) for arm in arms},
        "interval": {arm: stats.wilson(*pooled[arm]) for arm in arms},
        "judged": {arm: pooled[arm][1] for arm in arms},
        "test": test,
    }
    return out


def _means(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, float | None]:
    means: dict[str, float | None] = {}
    for key in keys:
        values = [r[key] for r in rows if r[key] is not None]
        means[key] = round(sum(values) / len(values), 4) if values else None
    if rows:
        means["days"] = f"{rows[0]['day']}..{rows[-1]['day']}"  # type: ignore[assignment]
    return means


def _share(followed: int, judged: int) -> float | None:
    return round(followed / judged, 4) if judged else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=ROOT / "data" / "feedback_loop")
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--movies", type=int, default=500)
    parser.add_argument("--visits", type=float, default=1.0, help="mean visits a user a day")
    parser.add_argument("--days", type=int, default=24, help="simulated days after day 0")
    parser.add_argument("--explore-slots", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--window", type=int, default=4, help="days averaged at start and end")
    args = parser.parse_args()
    if args.dir.exists() and any(args.dir.iterdir()):
        raise SystemExit(f"{args.dir} is not empty: choose a new --dir")
    started = time.monotonic()
    study = Study(args)
    study.start()
    days = []
    try:
        for n in range(args.days + 1):
            days.append(study.day(n))
        # The last day's experiment answered nobody: its day is not simulated.
        movierec("experiment", "stop", "--models", str(study.models))
    finally:
        study.stop()
    log("computing the figures")
    t = time.monotonic()
    result = figures(study, days)
    study.seconds["figures"] = time.monotonic() - t
    result["settings"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    result["days"] = days
    result["seconds"] = {
        "total": round(time.monotonic() - started, 1),
        **{k: round(v, 1) for k, v in study.seconds.items()},
    }
    out = args.dir / "feedback_loop.json"
    out.write_text(json.dumps(result, indent=2))
    write_page(result, args.dir / "feedback_loop.html")
    print(json.dumps({"summary": result["summary"], "seconds": result["seconds"]}, indent=2))
    log(f"wrote {out} and {args.dir / 'feedback_loop.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
