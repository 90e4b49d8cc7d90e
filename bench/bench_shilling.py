"""A shilling campaign against the models, detected and mitigated: what it costs.

    .venv/bin/python bench/bench_shilling.py [--users 2000] [--movies 500] [--days 14]
        [--attack-day 10] [--accounts 50] [--hours 6] [--after-day 12] [--seeds 3] [--first-seed 7]
        [--models itemknn,rp3beta,popularity]

Per seed, two sites of the same world and users: one with a campaign of `accounts` fake
accounts pushing a long-tail movie (a fifth of the way up the popularity ranking) from
`attack-day`, one clean. Both are ingested through the real ingestion; then

    detection   movierec.audit.attacks on the attacked store: the campaign found, its
                delay (detected_at - the campaign's start) and the detector's time; the
                same on the clean store (any detection there is a false alarm)
    exposure    the share of real users' top-20 lists holding the target (users who
                have it already left out): before (a model trained on data before the
                attack), after without and after with the trust mitigation (trained
                on data before `after-day`), and on the clean site at the same cut
    cost        NDCG@20 of each model on what users liked in [after-day, days) (the
                pre-attack model judged on the same window), and the expected
                conversion of its lists: the probability that the simulated users, as
                they were at the model's cut, pick something from their list (the
                simulator's oracle, which knows their tastes)

Prints one JSON object: every seed's figures and their means.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from movierec.audit.attacks import movie_exposure, shilling_report
from movierec.catalog.reader import Catalogue
from movierec.evaluation.offline import evaluate
from movierec.evaluation.split import holdout
from movierec.store.events import EventStore
from movierec_sim.attacks import ShillingCampaign
from movierec_sim.world import WorldConfig
from tests.support.shilling import (
    ShilledSite,
    expected_conversion,
    fit_at,
    long_tail,
    real_users,
    shilled_site,
)

POSITIVE_STARS = 4.0


def one_seed(args: argparse.Namespace, seed: int, root: Path) -> dict[str, Any]:
    world = WorldConfig(users=args.users, movies=args.movies, seed=seed)
    days = (args.attack_day, args.after_day)

    def campaign(w: Any) -> ShillingCampaign:
        return ShillingCampaign(
            long_tail(w), accounts=args.accounts, start_day=args.attack_day,
            duration_hours=args.hours, seed=seed,
        )  # fmt: skip

    started = time.monotonic()
    attacked = shilled_site(root / "attacked", world, args.days, campaign, seed, days)
    clean = shilled_site(root / "clean", world, args.days, None, seed, days)
    sites_seconds = time.monotonic() - started
    record = attacked.campaign
    assert record is not None and attacked.target is not None
    result: dict[str, Any] = {
        "seed": seed,
        "target": attacked.target,
        "campaign": {k: record[k] for k in ("start", "end", "lines")}
        | {"accounts": len(record["accounts"])},
        "lines": {"attacked": attacked.ledger["lines"], "clean": clean.ledger["lines"]},
        "simulate_and_ingest_seconds": round(sites_seconds, 1),
        "detection": detection(attacked, clean),
        "models": {},
    }
    for kind in args.models.split(","):
        result["models"][kind] = {
            "pre_attack": judged(attacked, kind, args.attack_day, args, trust=False),
            "after_without": judged(attacked, kind, args.after_day, args, trust=False),
            "after_with": judged(attacked, kind, args.after_day, args, trust=True),
            "clean_without": judged(clean, kind, args.after_day, args, trust=False, of=attacked),
            "clean_with": judged(clean, kind, args.after_day, args, trust=True, of=attacked),
        }
        print(f"seed {seed} {kind}: {result['models'][kind]}", file=sys.stderr, flush=True)
    return result


def detection(attacked: ShilledSite, clean: ShilledSite) -> dict[str, Any]:
    record = attacked.campaign
    assert record is not None
    report = shilling_report(attacked.store)
    start_ns = attacked.start_ns + record["start_seconds"] * 10**9
    found = [c for c in report["campaigns"] if c["target"] == attacked.target]
    out: dict[str, Any] = {
        "detected": bool(found),
        "detector_seconds": report["seconds"],
        "detections": len(report["detections"]),
        "false_detections_clean": len(shilling_report(clean.store)["detections"]),
    }
    if found:
        first = next(d for d in report["detections"] if d["movie_id"] == attacked.target)
        out |= {
            "delay_hours": round((found[0]["detected_at_ns"] - start_ns) / 3600e9, 3),
            "first_seen": first["first_seen"],
            "detected_at": first["detected_at"],
            "accounts_flagged": first["accounts"],
            "campaign_accounts_flagged": found[0]["accounts"],
            "campaign_movies": len(found[0]["movies"]),
            "score": first["score"],
        }
    return out


def judged(
    site: ShilledSite,
    kind: str,
    cut_day: float,
    args: argparse.Namespace,
    trust: bool,
    of: ShilledSite | None = None,
) -> dict[str, Any]:
    """One model's exposure of the target (the attacked site's: `of`), NDCG@20 on
    [after_day, days), and expected conversion."""
    target = (of or site).target
    assert target is not None
    started = time.monotonic()
    model, train = fit_at(site.store, site.day_ns(cut_day), kind, trust)
    fit_seconds = time.monotonic() - started
    users = real_users(site.world, train)
    store = EventStore(site.store)
    test = holdout(
        store, train, site.day_ns(args.after_day), site.day_ns(args.days) + 1, POSITIVE_STARS
    )
    assert int(test.user_ids.max(initial=0)) <= site.world.n_users  # no fake account tested
    report = evaluate(model, train, test, Catalogue.load(store.catalog_path))
    exposure = movie_exposure(model, train, target, users)
    return {
        "exposure": exposure["exposure"],
        "lists_with_target": exposure["lists_with_movie"],
        "ndcg@20": round(report["ndcg@20"], 5),
        "expected_conversion": round(expected_conversion(site, cut_day, model, users), 5),
        "fit_seconds": round(fit_seconds, 2),
    }


def means(seeds: list[dict[str, Any]]) -> dict[str, Any]:
    detected = [s["detection"] for s in seeds]
    delays = [d["delay_hours"] for d in detected if d["detected"]]
    out: dict[str, Any] = {
        "detected": sum(d["detected"] for d in detected),
        "delay_hours_max": max(delays) if delays else None,
        "delay_hours_min": min(delays) if delays else None,
        "delay_hours_mean": _mean(delays),
        "false_detections_clean": sum(d["false_detections_clean"] for d in detected),
        "detector_seconds_max": max(d["detector_seconds"] for d in detected),
        "models": {},
    }
    for kind in seeds[0]["models"]:
        rows = {
            arm: {
                figure: _mean([s["models"][kind][arm][figure] for s in seeds])
                for figure in ("exposure", "ndcg@20", "expected_conversion")
            }
            for arm in seeds[0]["models"][kind]
        }
        with_, without = rows["clean_with"], rows["clean_without"]
        rows["trust_cost_on_clean"] = {
            figure: round(with_[figure] - without[figure], 5)
            for figure in ("ndcg@20", "expected_conversion")
        }
        out["models"][kind] = rows
    return out


def _mean(values: list[Any]) -> float | None:
    kept = [float(v) for v in values if v is not None]
    return round(float(np.mean(kept)), 5) if kept else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--movies", type=int, default=500)
    parser.add_argument("--days", type=float, default=14.0)
    parser.add_argument("--attack-day", type=float, default=10.0)
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--hours", type=float, default=6.0)
    parser.add_argument("--after-day", type=float, default=12.0)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=7)
    parser.add_argument("--models", default="itemknn,rp3beta,popularity")
    args = parser.parse_args()
    if not args.attack_day < args.after_day < args.days:
        parser.error("need --attack-day < --after-day < --days")
    seeds = []
    with tempfile.TemporaryDirectory(prefix="bench-shilling-") as tmp:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            seeds.append(one_seed(args, seed, Path(tmp) / f"seed-{seed}"))
    print(json.dumps({"settings": vars(args), "summary": means(seeds), "seeds": seeds}, indent=2))


if __name__ == "__main__":
    main()
