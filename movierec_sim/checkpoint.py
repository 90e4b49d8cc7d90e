"""A simulation's state as plain data, written atomically, read back into a new Simulation.

The World is not stored: it is rebuilt from its config, which the checkpoint keeps with
the SimConfig so a resume on another world can be refused. Neither are the HTTP client,
the sink or the progress printer. What is stored is everything else a continued run
reads: the clock, every RNG's state, the population, the writer's pending and late
lines, the ledger and the tallies, so a resumed run writes what the run would have
written had it never stopped. Only numpy arrays, builtins and Counter are pickled, and
only those are unpickled (`_Unpickler`).
"""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from movierec_sim.config import SimConfig
from movierec_sim.conversion import _Pending
from movierec_sim.engine import Simulation
from movierec_sim.ledger import Ledger
from movierec_sim.online import OnlineTally
from movierec_sim.world import WorldConfig
from movierec_sim.writer import _Chunk

VERSION = 1
RNGS = (
    "rng_visits",
    "rng_choice",
    "rng_watch",
    "rng_faults",
    "rng_drift",
    "rng_oracle",
    "rng_requests",
    "rng_time",
)
POPULATION = ("taste", "busy_until", "history", "history_next", "day", "released")
# Settings that shape the log itself: a resume must use the checkpoint's. The others
# (days, events, speed, service, timeout, concurrency, request faults) may change.
SITE_FIELDS = ("start", "rating_scale", "result_separator", "faults", "oracle_share")
# Ledger fields the current invocation sets; the rest are the run's and carry on.
_LEDGER_OWN = ("settings", "world")
_INT_LISTS = ("call_latencies", "reordered_lines")


class CheckpointError(Exception):
    """A checkpoint that cannot be read: damaged, or of a version this code does not know."""


def capture(sim: Simulation, extra: dict[str, Any]) -> dict[str, Any]:
    """The simulation's state at the end of its last tick, as plain data (and `extra`)."""
    pop, writer, conv = sim.population, sim.writer, sim.conversion
    ledger = {
        f.name: getattr(sim.ledger, f.name)
        for f in dataclasses.fields(Ledger)
        if f.name not in _LEDGER_OWN
    }
    for name in _INT_LISTS:
        ledger[name] = np.asarray(ledger[name], dtype=np.int64)
    ledger["fault_lines"] = {k: np.asarray(v, np.int64) for k, v in ledger["fault_lines"].items()}
    return {
        "version": VERSION,
        "world": sim.world.config.model_dump(mode="json"),
        "simulation": sim.config.model_dump(mode="json"),
        "tick": sim.tick,
        "t": sim.t,
        "visits": sim.visits,
        "wall_seconds": sim._wall_seconds,
        "rngs": {name: getattr(sim, name).bit_generator.state for name in RNGS},
        "fault_seed": sim.faults._seed,
        "population": {name: getattr(pop, name) for name in POPULATION}
        | {"popularity_cumsum": pop.popularity_cumsum},
        "writer": {
            "pending": {
                tick: [_values(c) for c in chunks] for tick, chunks in writer._pending.items()
            },
            "late": list(writer._late),
            "late_seq": writer._late_seq,
            "primary": writer._primary,
        },
        "ledger": ledger,
        "online": dict(zip(_names(sim.online), _values(sim.online), strict=True)),
        "conversion": {
            "pending": _values(conv.pending),
            "done": conv.done,
            "lost": list(conv._lost),
            "lost_watch_lines": conv.lost_watch_lines,
            "lost_watch_follows": conv.lost_watch_follows,
        },
        **extra,
    }


def _names(obj: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(obj)]


def _values(obj: Any) -> tuple[Any, ...]:
    """A dataclass's field values, not copied (`dataclasses.astuple` deep-copies arrays)."""
    return tuple(getattr(obj, name) for name in _names(obj))


def restore(sim: Simulation, state: dict[str, Any]) -> None:
    """Put a captured state into a Simulation freshly built on the same world and config.

    Objects shared between parts (one RNG for the fault maker and the writer, the
    population the oracle reads, the ledger the writer counts into) are updated in place,
    so they stay shared."""
    if state["tick"] != sim.tick:
        raise ValueError(f"checkpoint tick {state['tick']} s, simulation tick {sim.tick} s")
    sim.t = int(state["t"])
    sim.visits = int(state["visits"])
    sim._wall_seconds = float(state["wall_seconds"])
    for name, rng_state in state["rngs"].items():
        getattr(sim, name).bit_generator.state = rng_state
    sim.faults._seed = int(state["fault_seed"])
    for name, value in state["population"].items():
        setattr(sim.population, name, value)
    w = state["writer"]
    pending: defaultdict[int, list[_Chunk]] = defaultdict(list)
    for tick, chunks in w["pending"].items():
        pending[int(tick)] = [_Chunk(*c) for c in chunks]
    sim.writer._pending = pending
    sim.writer._late = list(w["late"])
    sim.writer._late_seq = int(w["late_seq"])
    sim.writer._primary = int(w["primary"])
    ledger = dict(state["ledger"])
    for name in _INT_LISTS:
        ledger[name] = ledger[name].tolist()
    ledger["fault_lines"] = {k: v.tolist() for k, v in ledger["fault_lines"].items()}
    for name, value in ledger.items():
        setattr(sim.ledger, name, value)
    sim.online = OnlineTally(**state["online"])
    c, conv = state["conversion"], sim.conversion
    conv.pending = _Pending(*c["pending"])
    conv.done = c["done"]
    conv._lost = list(c["lost"])
    conv.lost_watch_lines = int(c["lost_watch_lines"])
    conv.lost_watch_follows = int(c["lost_watch_follows"])


def differences(state: dict[str, Any], world: WorldConfig, config: SimConfig) -> list[str]:
    """What the given world and site settings change from the checkpoint's, one text per
    field ("users: 2000 in the state, 3000 given"); empty when a resume may go on."""
    found = []
    given_world = world.model_dump(mode="json")
    for name, then in state["world"].items():
        if given_world.get(name) != then:
            found.append(f"{name}: {then!r} in the state, {given_world.get(name)!r} given")
    given_sim = config.model_dump(mode="json")
    for name in SITE_FIELDS:
        then = state["simulation"].get(name)
        if given_sim.get(name) != then:
            found.append(f"{name}: {then!r} in the state, {given_sim.get(name)!r} given")
    if config.tick_seconds is not None and config.tick_seconds != state["tick"]:
        found.append(f"tick_seconds: {state['tick']!r} in the state, {config.tick_seconds!r} given")
    return found


def save(path: Path, state: dict[str, Any]) -> int:
    """Write state atomically (temp file, fsync, rename, fsync of the folder); its size."""
    data = pickle.dumps(state, protocol=5)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temp.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temp, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    return len(data)


def load(path: Path) -> dict[str, Any] | None:
    """The checkpoint at path (None if there is none); CheckpointError if unreadable."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        state = _Unpickler(io.BytesIO(data)).load()
    except Exception as error:
        raise CheckpointError(f"checkpoint {path} is damaged: {error}") from error
    version = state.get("version") if isinstance(state, dict) else None
    if version != VERSION:
        raise CheckpointError(f"checkpoint {path} has version {version!r}; expected {VERSION}")
    return state


class _Unpickler(pickle.Unpickler):
    """Reads back what `capture` stores and refuses every other class."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "collections" and name == "Counter":
            return Counter
        if module == "numpy" or module.startswith("numpy."):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a checkpoint")
