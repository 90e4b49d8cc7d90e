#!/usr/bin/env python3
"""The offline model report CI publishes: a small simulated world through the real commands.

Run with the project's virtualenv (scripts/setup.sh makes it; scripts/test.sh calls it
after the tests):

    .venv/bin/python scripts/model_report.py [--force] [--out reports/model]

When the pipeline code (PIPELINE below) is what the last report was made from, it says so
and stops. Otherwise, in a temporary folder: `movierec simulate` a 2,000-user, 500-movie
site for two weeks into a local log, `movierec site` for its user/movie API, `movierec
ingest`, `movierec train --budget 10` and `movierec evaluate`. The evaluation's JSON and
HTML land in OUT/offline.json and OUT/offline.html, and OUT/summary.json holds the
fingerprint, the commit, the world, the seconds per step and the winner's and the
baseline's key offline figures. One line per step, then one line of summary; a failing
step stops the script with exit 1, naming the step and the tail of its log.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "reports" / "model"

# What can change a model, and so this report. Everything on the path of the five commands
# from a log line to an offline figure: the stream and the log format it is parsed by, the
# quality checks, the catalogue (which movies are known), the store, ingestion, the training
# data, the models, the registry, the search, the evaluation and its metrics, and the part of
# `movierec train` that lives in release/ (train.py, and the gate that sets the production
# pointer the report names). The foundations beside them hold ids, time units and every
# option's default. movierec_sim is the world the models learn from, constraints.txt pins
# the numerical libraries (numpy, scipy, implicit, numba, duckdb), and this script fixes the
# world's size and the training budget. Left out on purpose, since no offline figure depends
# on them: serving, http, online, monitoring, run, supervision, the rest of release, cli.py
# and progress.py.
PIPELINE: tuple[str, ...] = (
    "movierec/__init__.py",
    "movierec/config.py",
    "movierec/ids.py",
    "movierec/times.py",
    "movierec/vocab.py",
    "movierec/stream",
    "movierec/logformat",
    "movierec/quality",
    "movierec/catalog",
    "movierec/store",
    "movierec/ingest",
    "movierec/features",
    "movierec/models",
    "movierec/registry",
    "movierec/training",
    "movierec/evaluation",
    "movierec/release/train.py",
    "movierec/release/gate.py",
    "movierec/release/checks.py",
    "movierec_sim",
    "constraints.txt",
    "scripts/model_report.py",
)

# The world: the tests' site (2,000 users, 500 movies, seed 7) for two simulated weeks, about
# 0.9M log lines with 1% dirt, trained for 10 s of search: about 40 s in all on two cores.
WORLD: dict[str, Any] = {"users": 2000, "movies": 500, "seed": 7, "days": 14, "faults": 0.01}
BUDGET_S = 10
METRICS = ("ndcg@20", "recall@20", "map@20", "hit_rate@20", "coverage")
BASELINE = "popularity"
STEP_TIMEOUT_S = 300.0
TAIL_LINES = 30


class StepError(Exception):
    """A step that did not finish: its name, what happened and the log to show."""

    def __init__(self, step: str, what: str, log: Path | None) -> None:
        super().__init__(f"step {step!r} {what}")
        self.step, self.log = step, log


def pipeline_files(root: Path, paths: Sequence[str] = PIPELINE) -> Iterator[tuple[str, Path]]:
    """(relative name, path) of every file under `paths`, sorted; caches and hidden files
    (__pycache__, *.pyc, .name) are not code."""
    for entry in sorted(paths):
        top = root / entry
        found = sorted(top.rglob("*")) if top.is_dir() else [top]
        for path in (p for p in found if p.is_file()):
            parts = path.relative_to(root).parts
            if any(p.startswith(".") or p == "__pycache__" for p in parts):
                continue
            if path.suffix in {".pyc", ".pyo"}:
                continue
            yield path.relative_to(root).as_posix(), path


def fingerprint(root: Path, paths: Sequence[str] = PIPELINE) -> str:
    """sha256 over the names and contents of the pipeline's files (a listed path that is
    missing counts too, so deleting one changes it)."""
    digest = hashlib.sha256()
    for entry in sorted(paths):
        if not (root / entry).exists():
            digest.update(f"{entry}\0missing\n".encode())
    for name, path in pipeline_files(root, paths):
        content = hashlib.sha256(path.read_bytes()).hexdigest()
        digest.update(f"{name}\0{content}\n".encode())
    return digest.hexdigest()


def current_summary(out: Path, fp: str) -> dict[str, Any] | None:
    """The last summary when it was made from this fingerprint and its report is all there."""
    try:
        summary = json.loads((out / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict) or summary.get("fingerprint") != fp:
        return None
    if not all((out / name).is_file() for name in ("offline.json", "offline.html")):
        return None
    return summary


def git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=False, timeout=30
        )
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def child_env() -> dict[str, str]:
    """The environment without MOVIEREC_* settings, so a developer's own options (a config
    file, a budget) do not change the report."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MOVIEREC_")}


def tail(log: Path | None, lines: int = TAIL_LINES) -> str:
    if log is None or not log.exists():
        return "(no log)"
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(text) or "(empty log)"


class Runner:
    """The steps in one work folder: each step's output goes to WORK/<step>.log."""

    def __init__(self, root: Path, work: Path, total: int) -> None:
        self.root, self.work, self.total = root, work, total
        self.done = 0
        self.seconds: dict[str, float] = {}

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "movierec.cli", *args]

    @contextlib.contextmanager
    def step(self, step: str, what: str) -> Iterator[dict[str, str]]:
        """One line for the step: its name on entry, its seconds (and the note the block
        sets) at the end, or "failed" before the failure goes on."""
        self.done += 1
        print(f"model report: [{self.done}/{self.total}] {step}: {what} ...", end="", flush=True)
        started, note = time.monotonic(), {"note": ""}
        try:
            yield note
        except BaseException:
            print(" failed", flush=True)
            raise
        self.seconds[step] = round(time.monotonic() - started, 1)
        print(f" {self.seconds[step]:.1f} s{note['note']}", flush=True)

    def run(self, step: str, what: str, *args: str) -> None:
        """Run one command to its end; its stdout in WORK/<step>.out, the rest in the log."""
        log, out = self.work / f"{step}.log", self.work / f"{step}.out"
        with self.step(step, what), log.open("wb") as err, out.open("wb") as stdout:
            try:
                done = subprocess.run(
                    self.command(*args), cwd=self.root, env=child_env(), stdout=stdout,
                    stderr=err, timeout=STEP_TIMEOUT_S, check=False,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                raise StepError(step, f"did not finish in {STEP_TIMEOUT_S:.0f} s", log) from None
            if done.returncode != 0:
                stdout.flush()
                err.write(out.read_bytes()[-4000:])  # the command's answer belongs in the tail
                raise StepError(step, f"exited with status {done.returncode}", log)

    @contextlib.contextmanager
    def site(self, ledger: Path) -> Iterator[str]:
        """`movierec site` for the world behind the ledger, on a free port, until the block
        ends; yields its URL once it answers."""
        log = self.work / "site.log"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        with log.open("wb") as err:
            process = subprocess.Popen(
                self.command("site", "--ledger", str(ledger), "--port", str(port)),
                cwd=self.root, env=child_env(), stdout=err, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            with self.step("site", "the user/movie API of that world") as note:
                wait_until_answering(url, process, log)
                note["note"] = f" ({url})"
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_until_answering(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StepError("site", f"exited with status {process.returncode}", log)
        try:
            with urllib.request.urlopen(f"{url}/user/1", timeout=2):
                return
        except urllib.error.HTTPError:
            return  # an answer, even a 404, is a listening API
        except OSError:
            time.sleep(0.1)
    raise StepError("site", f"did not answer on {url} within 60 s", log)


def figures(model: dict[str, Any]) -> dict[str, Any]:
    return {"version": model.get("version"), **{m: model.get(m) for m in METRICS}}


def read_evaluation(report: dict[str, Any]) -> dict[str, Any]:
    """The winner (the version in production after training) and the baseline, from the
    evaluation's JSON."""
    models: dict[str, dict[str, Any]] = report["models"]
    winner = next(
        (kind for kind, m in models.items() if m.get("version") == report.get("production")),
        report["best"],
    )
    return {
        "metric": report.get("metric"),
        "split": report.get("split", {}).get("kind"),
        "best_on_test": report.get("best"),
        "winner": {"model": winner, **figures(models[winner])},
        "baseline": {"model": BASELINE, **figures(models[BASELINE])},
    }


def build(root: Path, work: Path, out: Path, fp: str) -> dict[str, Any]:
    """Every step in `work`; the report into `out` (summary.json last); the summary."""
    started = time.monotonic()
    runner = Runner(root, work, total=5)
    log, ledger, store, models = (work / n for n in ("log", "ledger.json", "store", "models"))
    w = WORLD
    runner.run(
        "simulate", f"{w['users']} users, {w['movies']} movies, {w['days']} days",
        "simulate", "--users", str(w["users"]), "--movies", str(w["movies"]),
        "--seed", str(w["seed"]), "--days", str(w["days"]), "--faults", str(w["faults"]),
        "--stream", f"file://{log}", "--ledger", str(ledger),
        "--api-port", "0", "--service", "http://127.0.0.1:9", "--quiet",
    )  # fmt: skip
    with runner.site(ledger) as api:
        runner.run(
            "ingest", "the log into the store, movie ids checked with the API",
            "ingest", "--source", f"file://{log}", "--store", str(store), "--api", api,
            "--api-rate-limit", "5000", "--catalogue-wait", "60",
            "--report", str(work / "quality.json"), "--quiet",
        )  # fmt: skip
    runner.run(
        "train", f"search for {BUDGET_S} s, register, promote the winner",
        "train", "--store", str(store), "--models", str(models), "--budget", str(BUDGET_S),
    )  # fmt: skip
    runner.run(
        "evaluate", "offline figures on the test split, JSON and HTML",
        "evaluate", "--store", str(store), "--models", str(models),
        "--report", str(work / "report" / "offline.json"),
    )  # fmt: skip
    try:
        report = json.loads((work / "report" / "offline.json").read_text())
        evaluation = read_evaluation(report)
        lines = json.loads(ledger.read_text())["lines"]
        quality = json.loads((work / "quality.json").read_text())
    except (OSError, ValueError, KeyError, StopIteration) as error:
        problem = f"left a report that cannot be read ({error!r})"
        raise StepError("evaluate", problem, work / "evaluate.log") from None
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").unlink(missing_ok=True)  # never a new report under an old summary
    for name in ("offline.json", "offline.html"):
        shutil.copyfile(work / "report" / name, out / name)
    summary: dict[str, Any] = {
        "fingerprint": fp,
        "commit": git(root, "rev-parse", "HEAD"),
        "uncommitted_changes": bool(git(root, "status", "--porcelain", "--", *PIPELINE)),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "world": {**WORLD, "lines": lines, "stored": sum(quality["stored"].values())},
        "train_budget_s": BUDGET_S,
        "seconds": {**runner.seconds, "total": round(time.monotonic() - started, 1)},
        **evaluation,
        "report": {"json": "offline.json", "html": "offline.html"},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def shown(path: Path) -> str:
    """The path from the current folder when it lies below it (as a reader would type it)."""
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def one_line(summary: dict[str, Any], out: Path) -> str:
    metric = summary.get("metric") or "ndcg@20"
    win, base, world = summary["winner"], summary["baseline"], summary["world"]
    ratio = win[metric] / base[metric] if base.get(metric) else float("nan")
    return (
        f"model report: {win['model']} {metric} {win[metric]:.4f} vs {base['model']} "
        f"{base[metric]:.4f} ({ratio:.2f}x), recall@20 {win['recall@20']:.3f} vs "
        f"{base['recall@20']:.3f}, coverage {win['coverage']:.2f} vs {base['coverage']:.2f}; "
        f"{world['users']} users x {world['movies']} movies, {world['days']} days, "
        f"{world['lines']:,} lines; {summary['seconds']['total']:.1f} s "
        f"-> {shown(out / 'offline.html')}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the report goes")
    parser.add_argument("--root", type=Path, default=ROOT, help="the tree whose code is run")
    parser.add_argument("--force", action="store_true", help="make it even when current")
    args = parser.parse_args(argv)
    root, out = args.root.resolve(), args.out.resolve()
    fp = fingerprint(root)
    summary = current_summary(out, fp)
    if summary is not None and not args.force:
        print(
            f"model report: current (pipeline code {fp[:12]} unchanged since commit "
            f"{(summary.get('commit') or '?')[:12]}): {shown(out / 'offline.html')}"
        )
        return 0
    with tempfile.TemporaryDirectory(prefix="movierec-model-report-") as work:
        try:
            summary = build(root, Path(work), out, fp)
        except StepError as failure:
            print(f"model report: {failure}", file=sys.stderr)
            if failure.log is not None:
                print(f"--- last lines of {failure.log.name} ---", file=sys.stderr)
                print(tail(failure.log), file=sys.stderr)
            return 1
    print(one_line(summary, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
