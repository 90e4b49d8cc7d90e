"""The scraping detector on hand-made answer logs whose right answer is known, and against
a slow reference that judges request by request."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from movierec.audit.scraping import (
    KINDS,
    ScrapingSettings,
    bucket_figures,
    detect_scraping,
    known_users,
    scraping_report,
)
from movierec.online.answers import ANSWER_SCHEMA
from movierec.store.events import Checkpoint, EventStore
from tests.support.store import write_watch

T0 = 1_735_689_600_000_000  # 2025-01-01T00:00 UTC, in microseconds
SECOND = 1_000_000
MINUTE = 60 * SECOND
SITE_USERS = np.arange(1, 2001)

Record = tuple[int, int, str]  # (time us, user, source)


def iso(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1e6, UTC).isoformat(timespec="milliseconds")


def site(minutes: int, seed: int = 3) -> list[Record]:
    """The site: one request every 0.6 s (100 a minute, from 0.3 s in), for its users."""
    users = np.random.default_rng(seed).choice(SITE_USERS, 100 * minutes)
    return [(T0 + 300_000 + 600_000 * k, int(u), "model") for k, u in enumerate(users)]


def burst(start: int, count: int, every: int, first_id: int) -> list[Record]:
    """A scraper walking ids first_id, first_id + 1, ... one request every `every` us."""
    return [(start + every * j, first_id + j, "popular") for j in range(count)]


def table(records: list[Record]) -> pa.Table:
    ordered = sorted(records)  # the log is written in time order
    columns = {name: [None] * len(ordered) for name in ANSWER_SCHEMA.names}
    columns["served_us"] = [r[0] for r in ordered]
    columns["user_id"] = [r[1] for r in ordered]
    columns["source"] = [r[2] for r in ordered]
    return pa.table(
        {name: pa.array(columns[name], ANSWER_SCHEMA.field(name).type) for name in columns}
    )


# The scraper of the known case: from 40 min 17.025 s, 20 ids a second for 5 minutes.
BURST_START = T0 + 40 * MINUTE + 17_025_000
KNOWN_CASE = site(60) + burst(BURST_START, 6000, 50_000, 1_000_001)


def test_an_ordinary_log_gives_no_detection():
    report = detect_scraping(table(site(60)), SITE_USERS)
    assert report["detections"] == []
    assert report["answers"] == 6000
    assert report["undecided_buckets"] == 5  # the first five have no baseline yet
    assert len(report["buckets"]) == 60
    assert report["buckets"][10]["baseline_rate"] == 100
    assert report["warnings"] == []


def test_a_burst_of_sequential_unknown_ids_is_detected_with_the_known_delays():
    report = detect_scraping(table(KNOWN_CASE), SITE_USERS)
    found = {d["kind"]: d for d in report["detections"]}
    assert set(found) == set(KINDS)
    for detection in found.values():
        # Buckets 40 to 45 (the burst ends at 45:16.975): the site's 600 and its 6,000.
        assert detection["started"] == iso(T0 + 40 * MINUTE)
        assert detection["ended"] == iso(T0 + 46 * MINUTE)
        assert (detection["buckets"], detection["requests"]) == (6, 6600)
    # Its 20th id (the least run judged abnormal, against the site's runs of 1 or 2).
    assert found["sequential_ids"]["detected_at"] == iso(BURST_START + 19 * 50_000)
    # The bucket's 100th request (min_requests): the scraper's 66th beside the site's 34.
    assert found["unknown_ids"]["detected_at"] == iso(BURST_START + 65 * 50_000)
    # The bucket's 301st request (over 3 x the baseline of 100): the site's 49th and the
    # scraper's 252nd, at 29.575 s.
    assert found["rate"]["detected_at"] == iso(BURST_START + 251 * 50_000)
    assert found["rate"]["score"] == 13.0  # a full minute: 1,300 requests against 100
    assert found["unknown_ids"]["score"] == round(1200 / 1300, 4)
    flagged = [b["start"] for b in report["buckets"] if b["abnormal"]]
    assert flagged == [iso(T0 + m * MINUTE) for m in range(40, 46)]


def test_a_slow_scraper_of_random_unknown_ids_shows_only_in_the_unknown_share():
    """20 requests a minute beside the site's 100: no rate or run to speak of, but a sixth
    of the requests are for ids the site does not have (the margin is a tenth)."""
    rng = np.random.default_rng(5)
    start = T0 + 40 * MINUTE + 1_500_000
    ids = rng.integers(1_000_000, 2_000_000, 200).tolist()
    slow = [(start + 3 * SECOND * j, int(u), "popular") for j, u in enumerate(ids)]
    report = detect_scraping(table(site(60) + slow), SITE_USERS)
    assert [d["kind"] for d in report["detections"]] == ["unknown_ids"]
    (detection,) = report["detections"]
    assert detection["started"] == iso(T0 + 40 * MINUTE)
    assert detection["ended"] == iso(T0 + 50 * MINUTE)  # 200 ids, one every 3 s
    assert detection["score"] == round(20 / 120, 4)


def test_the_service_s_own_verdict_stands_in_for_the_store(tmp_path: Path):
    """The answer log as the service writes it, read from its files, with no store: an id
    answered from what is popular counts as unknown."""
    directory = tmp_path / "answers"
    directory.mkdir()
    for when, user, source in sorted(KNOWN_CASE):
        hour = datetime.fromtimestamp(when / 1e6, UTC).strftime("%Y%m%d%H")
        stamp = datetime.fromtimestamp(when / 1e6, UTC).isoformat(timespec="microseconds")
        record = {"time": stamp, "user": user, "version": "v1", "experiment": None}
        record |= {"arm": None, "source": source, "items": "a+1, b+2"}
        with open(directory / f"answers-{hour}.jsonl", "ab") as handle:
            handle.write(orjson.dumps(record) + b"\n")
    (directory / "answers-2025010100.jsonl").open("ab").write(b"not json\n")
    report = scraping_report(directory, None)
    assert report["parameters"]["unknown_basis"] == "answer_source"
    assert report["warnings"] == ["1 answer log lines did not parse"]
    assert report["detections"] == detect_scraping(table(KNOWN_CASE), SITE_USERS)["detections"]


def test_the_store_s_users_are_the_known_ones(tmp_path: Path):
    store = EventStore(tmp_path / "store")
    store.recover()
    write_watch(store, 1, [(T0 * 1000, int(u), "m+2000", 1) for u in SITE_USERS])
    store.commit(Checkpoint(seq=1))
    assert known_users(tmp_path / "store").tolist() == SITE_USERS.tolist()
    report = scraping_report(tmp_path / "no-answers", tmp_path / "store")
    assert report["parameters"]["unknown_basis"] == "store"
    assert report["parameters"]["known_users"] == 2000
    assert report["detections"] == []
    assert report["warnings"] == ["the answer log holds no answers: nothing to judge"]


def test_a_log_too_short_for_a_baseline_says_so():
    report = detect_scraping(table(site(3)), SITE_USERS)
    assert report["detections"] == [] and report["undecided_buckets"] == 3
    assert "too few to judge" in report["warnings"][0]


# ---- the slow reference ---------------------------------------------------------------
def longest_run(ids: list[int]) -> int:
    best, run, previous = 0, 0, None
    for user in sorted(set(ids)):
        run = run + 1 if previous is not None and user == previous + 1 else 1
        best, previous = max(best, run), user
    return best


def reference(records: list[Record], known: set[int], s: ScrapingSettings) -> list[dict]:
    """Bucket by bucket, and within an abnormal bucket request by request."""
    records = sorted(records)
    width = s.bucket_seconds * SECOND
    first = records[0][0] // width * width
    per: list[list[Record]] = [[] for _ in range((records[-1][0] - first) // width + 1)]
    for record in records:
        per[(record[0] - first) // width].append(record)

    def figure(kind: str, part: list[Record]) -> float:
        if kind == "rate":
            return len(part)
        if kind == "unknown_ids":
            return sum(r[1] not in known for r in part) / len(part)
        return longest_run([r[1] for r in part])

    def usable(kind: str, part: list[Record]) -> bool:
        return {"rate": True, "unknown_ids": len(part) >= s.min_requests}.get(kind, bool(part))

    def abnormal(kind: str, value: float, base: float) -> bool:
        if kind == "rate":
            return value > max(s.rate_margin * base, base + s.min_excess_requests)
        if kind == "unknown_ids":
            return value > base + s.unknown_margin
        return value >= max(s.run_margin * base, s.min_run)

    out = []
    for kind in KINDS:
        history: list[float] = []
        flagged: list[tuple[int, float, int]] = []  # (bucket, score, detected at)
        for i, part in enumerate(per):
            recent = history[-s.baseline_buckets :]
            if len(recent) < s.min_baseline_buckets or not usable(kind, part):
                if usable(kind, part):
                    history.append(figure(kind, part))
                continue
            base = statistics.median(recent)
            value = figure(kind, part)
            if not abnormal(kind, value, base):
                history.append(value)
                continue
            at = next(
                part[k - 1][0]
                for k in range(1, len(part) + 1)
                if usable(kind, part[:k]) and abnormal(kind, figure(kind, part[:k]), base)
            )
            score = value - base if kind == "unknown_ids" else value / max(base, 1.0)
            flagged.append((i, round(score, 4), at))
        while flagged:
            run = [flagged.pop(0)]
            while flagged and flagged[0][0] == run[-1][0] + 1:
                run.append(flagged.pop(0))
            first_bucket, last_bucket = run[0][0], run[-1][0]
            out.append(
                {
                    "kind": kind,
                    "started": iso(first + first_bucket * width),
                    "detected_at": iso(run[0][2]),
                    "ended": iso(first + (last_bucket + 1) * width),
                    "buckets": len(run),
                    "requests": sum(len(per[b]) for b in range(first_bucket, last_bucket + 1)),
                    "score": max(r[1] for r in run),
                }
            )
    return sorted(out, key=lambda d: (d["detected_at"], d["kind"]))


def test_the_reference_agrees_on_the_known_case():
    expected = detect_scraping(table(KNOWN_CASE), SITE_USERS)["detections"]
    assert reference(KNOWN_CASE, set(SITE_USERS.tolist()), ScrapingSettings()) == expected


@st.composite
def attacked_logs(draw: st.DrawFn) -> tuple[list[Record], int, int, bool]:
    """A site at a random pace over random users, and one client from the 7th minute on:
    sequential or random ids, unknown or the site's own, at 1 to 10 a second."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    minutes = draw(st.integers(8, 16))
    per_minute = draw(st.integers(10, 120))
    n = per_minute * minutes
    times = np.sort(rng.integers(T0, T0 + minutes * MINUTE, n))
    records = [
        (int(t), int(u), "model") for t, u in zip(times, rng.choice(SITE_USERS, n), strict=True)
    ]
    start = T0 + draw(st.integers(6 * MINUTE, (minutes - 1) * MINUTE))
    count = draw(st.integers(1, 400))
    every = draw(st.integers(100_000, 1_000_000))
    sequential = draw(st.booleans())
    first_id = draw(st.sampled_from([1, 500, 3000, 1_000_000]))
    if sequential:
        ids = range(first_id, first_id + count)
    else:
        ids = rng.integers(first_id, first_id + 3000, count).tolist()
    records += [(start + every * j, int(u), "popular") for j, u in enumerate(ids)]
    return records, start, start + every * (count - 1), sequential and count >= 2 * 20


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(attacked_logs())
def test_detections_match_the_reference_and_never_precede_the_burst(case):
    records, start, end, surely_sequential = case
    known = set(SITE_USERS.tolist())
    report = detect_scraping(table(records), SITE_USERS)
    assert report["detections"] == reference(records, known, ScrapingSettings())
    for detection in report["detections"]:
        assert detection["detected_at"] >= iso(start)
        assert detection["started"] <= detection["detected_at"] < detection["ended"]
    runs = [d for d in report["detections"] if d["kind"] == "sequential_ids"]
    if surely_sequential:  # 40 ids in a row: at least 20 of them in one bucket
        assert runs and iso(start) <= runs[0]["detected_at"] <= iso(end)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(1, 60)), min_size=1, max_size=300))
def test_bucket_figures_match_a_plain_count(pairs):
    buckets = np.array(sorted(b for b, _ in pairs), dtype=np.int64)
    users = np.array([u for _, u in sorted(pairs)], dtype=np.int64)
    unknown = users > 30
    figures = bucket_figures(buckets, users, unknown)
    for b in range(int(buckets.max()) + 1):
        ids = [u for bucket, u in sorted(pairs) if bucket == b]
        assert figures["requests"][b] == len(ids)
        assert figures["unknown"][b] == sum(u > 30 for u in ids)
        assert figures["longest_run"][b] == longest_run(ids)


def test_settings_are_checked():
    with pytest.raises(ValueError, match="rate_margin"):
        ScrapingSettings(rate_margin=1.0)
