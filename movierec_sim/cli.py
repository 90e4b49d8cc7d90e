"""`movierec simulate` and `movierec site`: the simulated streaming site from the command line."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any, ClassVar

import orjson
from pydantic import Field, field_validator, model_validator

from movierec.config import Settings, add_options, group
from movierec.progress import Progress
from movierec.stream import open_sink, parse_stream_url
from movierec_sim.api import SiteApiServer, serve_api
from movierec_sim.attacks import ShillingSettings, check_campaign, inject
from movierec_sim.checkpoint import CheckpointError, differences
from movierec_sim.config import ApiFaults, SimConfig
from movierec_sim.engine import Simulation
from movierec_sim.faults import FAULT_KINDS, FaultConfig, check_fault
from movierec_sim.resume import ResumableRun, StateDir
from movierec_sim.world import World, WorldConfig


class SiteCommand(Settings):
    """`movierec site`'s settings (flags, MOVIEREC_SITE_* variables, [site] of the file)."""

    component: ClassVar[str] = "site"

    world: WorldConfig = Field(default_factory=WorldConfig, description="the simulated world")
    ledger: Path | None = Field(None, description="serve the world of the run behind a ledger")
    port: int = Field(8080, ge=0, le=65535, description="port of the user/movie API")
    api_faults: ApiFaults = Field(
        default_factory=ApiFaults, description="site API faults", json_schema_extra=group("api_")
    )
    api_control: bool = Field(
        False, description="accept POST /_control/faults to switch faults at runtime"
    )


class SimulateCommand(Settings):
    """`movierec simulate`'s settings (MOVIEREC_SIMULATE_* variables, [simulate] of the file)."""

    component: ClassVar[str] = "simulate"

    world: WorldConfig = Field(default_factory=WorldConfig, description="the simulated world")
    simulation: SimConfig = Field(default_factory=SimConfig, description="how the site runs")
    stream: str = Field(
        "file://data/log", description="where log lines go: file://PATH or kafka://HOST:PORT/TOPIC"
    )
    ledger: Path | None = Field(None, description="write the run's JSON ledger here")
    faults: float = Field(
        0.0, ge=0, le=1, description="share of all lines made dirty, spread over every kind"
    )
    fault: tuple[str, ...] = Field(
        (),
        description=f"KIND=SHARE: share of lines with one kind of dirt ({', '.join(FAULT_KINDS)})",
    )
    api_port: int = Field(
        8080,
        ge=0,
        le=65535,
        description="serve the user/movie API here while simulating (0: do not)",
    )
    api_faults: ApiFaults = Field(
        default_factory=ApiFaults, description="site API faults", json_schema_extra=group("api_")
    )
    api_control: bool = Field(
        False, description="accept POST /_control/faults to switch faults at runtime"
    )
    quiet: bool = Field(False, description="no progress lines")
    state: Path | None = Field(
        None,
        description="resume from this folder's checkpoint and keep one there (--days, "
        "--events: that many more)",
    )
    checkpoint_every: int = Field(
        3600, ge=1, description="simulated seconds between checkpoints (with --state)"
    )
    linger: bool = Field(
        False,
        description="after the last day, keep the API up until stopped (GET /_site/finished "
        "answers 200), so ingestion can still check the last lines' movies",
    )
    shill: ShillingSettings = Field(
        default_factory=ShillingSettings,
        description="a shilling campaign injected into the log",
        json_schema_extra=group("shill_"),
    )

    @field_validator("stream")
    @classmethod
    def _known_stream(cls, stream: str) -> str:
        parse_stream_url(stream)  # ValueError naming the accepted forms
        return stream

    @field_validator("fault")
    @classmethod
    def _kind_and_share(cls, items: tuple[str, ...]) -> tuple[str, ...]:
        for kind, share in _fault_overrides(items).items():
            check_fault(kind, share)
        return items

    @model_validator(mode="after")
    def _faults_fit_in_every_line(self) -> SimulateCommand:
        self.fault_config()  # shares adding up to more than every line are refused
        return self

    @model_validator(mode="after")
    def _campaign_not_resumed(self) -> SimulateCommand:
        if self.shill.target is not None and self.state is not None:
            raise ValueError(
                "--shill-target cannot be combined with --state (a campaign is not resumable)"
            )
        return self

    def world_config(self) -> WorldConfig:
        """The world, with account ids reserved for the shilling campaign's fake accounts."""
        if self.shill.target is None:
            return self.world
        reserved = max(self.world.reserved_accounts, self.shill.accounts)
        return self.world.model_copy(update={"reserved_accounts": reserved})

    def fault_config(self) -> FaultConfig:
        return FaultConfig.build(self.faults, _fault_overrides(self.fault))

    def sim_config(self) -> SimConfig:
        """The simulation's settings, with the world's seed and the dirt asked for."""
        return self.simulation.model_copy(
            update={"seed": self.world.seed, "faults": self.fault_config()}
        )

    def api_fault_config(self) -> ApiFaults:
        """The API's faults, drawn from the world's seed."""
        return self.api_faults.model_copy(update={"seed": self.world.seed})


def _fault_overrides(items: tuple[str, ...]) -> dict[str, float]:
    overrides: dict[str, float] = {}
    for item in items:
        kind, sep, share = item.partition("=")
        if not sep:
            raise ValueError(f"--fault expects KIND=SHARE, got {item!r}")
        try:
            overrides[kind.strip()] = float(share)
        except ValueError:
            raise ValueError(f"--fault {item!r}: share must be a number") from None
    return overrides


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="run the simulated site: world, API, users, event log")
    add_options(p, SimulateCommand)
    p.set_defaults(handler=run_simulate)
    site = sub.add_parser("site", help="serve the simulated site's user/movie API only")
    add_options(site, SiteCommand)
    site.set_defaults(handler=run_site)


def run_simulate(command: SimulateCommand) -> int:
    store, state = None, None
    if command.state is not None:
        store = StateDir(command.state)
        try:  # refused before anything starts: no API, no log opened
            state = _resumable(store, command)
        except CheckpointError as error:
            print(f"movierec simulate: {error}", file=sys.stderr)
            return 2
    world = World(command.world_config())
    campaign = command.shill.campaign(command.world.seed)
    if campaign is not None:
        try:  # refused before anything starts
            check_campaign(world, campaign, command.simulation.days)
        except ValueError as error:
            print(f"movierec simulate: {error}", file=sys.stderr)
            return 2
    api = _start_api(world, command.api_port, command.api_fault_config(), command.api_control)
    sink = open_sink(command.stream)
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    progress = Progress("simulate", enabled=not command.quiet)
    ledger: dict[str, Any] | None = None
    try:
        if store is None:
            sim = Simulation(world, command.sim_config(), sink, progress=progress)
            if campaign is not None:
                inject(sim, campaign)
            ledger = sim.run(should_stop=stop.is_set)
        else:
            run = ResumableRun(
                store,
                state,
                world,
                command.sim_config(),
                sink,
                command.stream,
                progress,
                command.checkpoint_every,
            )
            ledger = run.run(should_stop=stop.is_set)
    except CheckpointError as error:
        print(f"movierec simulate: {error}", file=sys.stderr)
    finally:
        sink.close()
        if api is not None and ledger is None:
            api.stop()
    if ledger is None:
        signal.signal(signal.SIGINT, previous)
        return 2
    if api is not None:
        ledger["api"] = api.stats()
    if command.ledger:
        command.ledger.parent.mkdir(parents=True, exist_ok=True)
        command.ledger.write_bytes(orjson.dumps(ledger, option=orjson.OPT_INDENT_2))
    summary = {k: ledger[k] for k in ("lines", "clean", "faults")}
    summary["recommendation_calls"] = ledger["recommendation_calls"]["by_status"]
    summary["online"] = {
        "service": ledger["online"].get("service", {}).get("share"),
        "oracle": ledger["online"].get("oracle", {}).get("share"),
    }
    print(orjson.dumps(summary).decode(), flush=True)
    if command.ledger and not command.quiet:
        print(
            f"movierec simulate: the site's user/movie API for this world (ingestion checks "
            f"movie ids with it): movierec site --ledger {command.ledger}",
            file=sys.stderr,
        )
    if api is not None:
        if command.linger and not stop.is_set():
            api.finished = True
            print("movierec simulate: finished; the API stays up until stopped", file=sys.stderr)
            while not stop.wait(1.0):  # woken by SIGINT/SIGTERM's handler
                pass
        api.stop()
    signal.signal(signal.SIGINT, previous)
    return 0


def _resumable(store: StateDir, command: SimulateCommand) -> dict | None:
    """The checkpoint to resume from (None: a fresh run); CheckpointError if it is
    unreadable or of another site, naming each differing setting."""
    state = store.load()
    if state is None:
        return None
    problems = differences(state, command.world, command.sim_config())
    if problems:
        raise CheckpointError(
            f"--state {store.path} holds a run of another site ({'; '.join(problems)}); "
            "resume with the settings it was started with, or choose another --state"
        )
    return state


def _start_api(world: World, port: int, faults: ApiFaults, control: bool) -> SiteApiServer | None:
    if port == 0:
        return None
    server = SiteApiServer(world, port=port, faults=faults, control=control)
    try:
        server.start()
    except OSError as error:
        print(
            f"movierec simulate: the site API could not listen on port {port} ({error}); "
            "continuing without it (use --api-port to choose another port)",
            file=sys.stderr,
        )
        return None
    return server


def run_site(command: SiteCommand) -> int:
    world_config = command.world
    if command.ledger:
        try:
            recorded = orjson.loads(command.ledger.read_bytes())["world"]
            world_config = WorldConfig(**{**world_config.model_dump(), **recorded})
        except (OSError, KeyError, ValueError) as error:
            print(
                f"movierec site: no world in the ledger {command.ledger}: {error}", file=sys.stderr
            )
            return 2
    world = World(world_config)
    print(
        f"movierec site: {world_config.users} users, {world_config.movies} movies "
        f"(seed {world_config.seed}) on http://127.0.0.1:{command.port}",
        file=sys.stderr,
    )
    faults = command.api_faults.model_copy(update={"seed": world_config.seed})
    serve_api(world, port=command.port, faults=faults, control=command.api_control)
    return 0
