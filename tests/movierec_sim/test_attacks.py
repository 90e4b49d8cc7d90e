"""The simulator's shilling campaign: valid lines in the same log, counted in the ledger,
the same for the same seed, fake accounts the API answers, and the real users untouched."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from movierec.stream.locallog import LocalLogSink
from movierec.vocab import OCCUPATIONS
from movierec_sim.api import SiteApiServer
from movierec_sim.attacks import ShillingCampaign, ShillingSettings, inject
from movierec_sim.cli import SimulateCommand, run_simulate
from movierec_sim.engine import SimConfig, Simulation
from movierec_sim.world import World, WorldConfig
from tests.movierec_sim.test_api import Client
from tests.support.commands import movierec
from tests.support.logcheck import RATE_RE, WATCH_RE, classify, parse_time
from tests.support.shilling import long_tail

WORLD = World(WorldConfig(users=300, movies=80, seed=3, reserved_accounts=40))
TARGET = long_tail(WORLD)
CAMPAIGN = ShillingCampaign(TARGET, accounts=12, start_day=1.0, duration_hours=3, camouflage=2)


def simulate(
    tmp_path: Path, *campaigns: ShillingCampaign, days: float = 2.0
) -> tuple[dict, list[bytes]]:
    path = tmp_path / f"log-{len(list(tmp_path.iterdir()))}"
    sink = LocalLogSink(path)
    try:
        sim = Simulation(WORLD, SimConfig(seed=5, days=days, service="http://127.0.0.1:9"), sink)
        for campaign in campaigns:
            inject(sim, campaign)
        ledger = sim.run()
    finally:
        sink.close()
    return ledger, path.read_bytes().split(b"\n")[:-1]


def events_of(lines: list[bytes], users: set[int]) -> list[tuple[str, int, str, int, str]]:
    """(kind, user, movie, minute or stars, time) of the watch and rate lines of `users`."""
    out = []
    for raw in lines:
        text = raw.decode()
        m = WATCH_RE.fullmatch(text) or RATE_RE.fullmatch(text)
        if m and int(m[2]) in users:
            kind = "watch" if "/data/m/" in text else "rate"
            out.append((kind, int(m[2]), m[3], int(m[4]), m[1]))
    return out


def test_the_campaign_writes_valid_lines_the_ledger_counts(tmp_path: Path) -> None:
    ledger, lines = simulate(tmp_path, CAMPAIGN)
    (record,) = ledger["attacks"]
    fake = set(range(301, 313))
    assert record["accounts"] == sorted(fake) and record["target"] == TARGET
    assert ledger["world"]["reserved_accounts"] == 40
    mine = [raw for raw in lines if int(raw.split(b",")[1]) in fake]
    assert all(classify(raw, WORLD.movie_index) is not None for raw in mine)
    events = events_of(mine, fake)
    assert len(events) == len(mine)  # only watch and rate lines: no recommendation calls
    kinds = Counter(e[0] for e in events)
    assert kinds == {"watch": record["lines"]["watch"], "rate": record["lines"]["rate"]}
    # Each account watched the target to its end, minute by minute, and rated it 5.
    runtime = int(WORLD.movie_runtime[WORLD.movie_index[TARGET]])
    for account in fake:
        minutes = sorted(e[3] for e in events if e[:3] == ("watch", account, TARGET))
        assert minutes == list(range(runtime))
        assert [e[3] for e in events if e[:3] == ("rate", account, TARGET)] == [5]
        assert len({e[2] for e in events if e[1] == account}) == 1 + CAMPAIGN.camouflage
    assert record["lines"]["target_watch"] == 12 * runtime and record["lines"]["target_rate"] == 12
    times = sorted(parse_time(e[4]) for e in events)
    start, end = (parse_time(record[k][:19]) for k in ("start", "end"))
    assert start <= times[0] and times[-1] < end
    assert record["end_seconds"] <= ledger["simulated"]["seconds"]  # all of it was written


def test_the_real_users_do_exactly_what_they_would_without_it(tmp_path: Path) -> None:
    with_it, lines = simulate(tmp_path, CAMPAIGN)
    without, clean_lines = simulate(tmp_path)
    real = set(range(1, 301))
    assert events_of(lines, real) == events_of(clean_lines, real)
    record = with_it["attacks"][0]["lines"]
    assert with_it["clean"]["watch"] == without["clean"]["watch"] + record["watch"]
    assert with_it["clean"]["rate"] == without["clean"]["rate"] + record["rate"]
    assert without["attacks"] == []


def test_a_campaign_is_the_same_for_its_seed_and_another_for_another(tmp_path: Path) -> None:
    fake = set(range(301, 313))
    _, first = simulate(tmp_path, CAMPAIGN)
    _, again = simulate(tmp_path, CAMPAIGN)
    assert events_of(first, fake) == events_of(again, fake)
    other = ShillingCampaign(
        TARGET, accounts=12, start_day=1.0, duration_hours=3, camouflage=2, seed=1
    )
    _, changed = simulate(tmp_path, other)
    assert events_of(changed, fake) != events_of(first, fake)
    assert sum(1 for e in events_of(changed, fake) if e[2] == TARGET) == sum(
        1 for e in events_of(first, fake) if e[2] == TARGET
    )


def test_two_campaigns_take_the_next_reserved_ids(tmp_path: Path) -> None:
    second = ShillingCampaign(str(WORLD.movie_ids[0]), accounts=20, start_day=1.5)
    ledger, _ = simulate(tmp_path, CAMPAIGN, second)
    assert [a["accounts"] for a in ledger["attacks"]] == [
        list(range(301, 313)),
        list(range(313, 333)),
    ]


def test_the_api_answers_the_fake_accounts_as_users() -> None:
    with SiteApiServer(WORLD, port=0) as api:
        client = Client(api.port)
        status, body = client.get("/user/301")
        assert status == 200 and body["user_id"] == 301
        assert 13 <= body["age"] <= 80 and body["occupation"] in OCCUPATIONS
        assert body["gender"] in ("M", "F")
        assert client.get("/user/301") == (200, body)  # the same every time
        assert client.get("/user/340")[1]["user_id"] == 340
        assert client.get("/user/341") == (200, {"message": "invalid userID"})
        assert client.get("/user/300")[1] == WORLD.user_json(300)
    # `movierec site --ledger` builds the world from the ledger's: the same accounts.
    recorded = World(WorldConfig(**WORLD.config.model_dump()))
    assert recorded.user_json(301) == body


def test_a_campaign_that_cannot_run_is_refused(tmp_path: Path) -> None:
    sink = LocalLogSink(tmp_path / "log")
    sim = Simulation(WORLD, SimConfig(seed=5, days=2.0, service="http://127.0.0.1:9"), sink)
    later = str(WORLD.movie_ids[int(np.flatnonzero(WORLD.movie_release_day > 1)[0])])
    refused = {
        "no movie of this world": ShillingCampaign("no+such+movie+1900"),
        "comes out on day": ShillingCampaign(later, start_day=1.0),
        "reserves 40 account ids": ShillingCampaign(TARGET, accounts=41, start_day=1.0),
        "before the campaign starts": ShillingCampaign(TARGET, accounts=5, start_day=2.0),
    }
    for message, campaign in refused.items():
        with pytest.raises(ValueError, match=message):
            inject(sim, campaign)
    sim.advance(1.5)
    with pytest.raises(ValueError, match="past the start"):
        inject(sim, ShillingCampaign(TARGET, accounts=5, start_day=1.0))
    sim.close()
    sink.close()
    assert sim.ledger.attacks == []


def test_simulate_takes_a_campaign_from_its_flags(tmp_path: Path) -> None:
    done = movierec(
        "simulate", "--users", "300", "--movies", "80", "--seed", "3", "--days", "1.2",
        "--shill-target", TARGET, "--shill-accounts", "6", "--shill-at", "0.5",
        "--shill-hours", "1", "--stream", "file://OUT/log", "--ledger", "OUT/ledger.json",
        "--api-port", "0", "--service", "http://127.0.0.1:9", "--quiet",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    ledger = json.loads((tmp_path / "OUT/ledger.json").read_text())
    (record,) = ledger["attacks"]
    assert record["accounts"] == list(range(301, 307)) and record["start_seconds"] == 43_200
    assert ledger["world"]["reserved_accounts"] == 6
    lines = (tmp_path / "OUT/log").read_bytes().split(b"\n")[:-1]
    assert len(events_of(lines, set(record["accounts"]))) == sum(
        record["lines"][k] for k in ("watch", "rate")
    )


def test_simulate_refuses_a_campaign_it_cannot_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = WorldConfig(users=300, movies=80, seed=3)
    command = SimulateCommand(
        world=world,
        simulation=SimConfig(days=1.0),
        stream=f"file://{tmp_path / 'log'}",
        api_port=0,
        shill=ShillingSettings(target="no+such+movie+1900"),
    )
    assert run_simulate(command) == 2
    assert "no movie of this world" in capsys.readouterr().err
    assert not (tmp_path / "log").exists()  # refused before anything started
    with pytest.raises(ValidationError, match="not resumable"):
        SimulateCommand(
            world=world, state=tmp_path / "state", shill=ShillingSettings(target=TARGET)
        )
