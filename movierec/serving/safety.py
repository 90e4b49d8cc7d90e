"""Keeping adult movies from minors: who is restricted, which of a snapshot's items are
adult, and an answer without them.

The rule: a movie the catalogue marks adult is never recommended to a user the catalogue
says is under 18, nor to a user of unknown age (not in the catalogue, or without an age)
unless `movierec serve --adult-for-unknown-age` allows it. It is applied where an answer is
made from a ranked list (RecommendationService.answer), so it holds for every source
(fresh, model, segment, popular) and every experiment arm alike, and a movie the catalogue
newly marks adult is kept out from its next read on, without rebuilding any list.

The rule fails safe: a restricted user is shown only movies the catalogue says are not
adult. A movie it does not know yet (new in the log since its last read, or looked up but
not answered), or whose adult flag the API did not give, is held back like an adult one,
since the service cannot tell it from one; the catalogue's next read clears it.

A list the filter shortens below 20 is topped up with the snapshot's most popular cleared
items, then every other cleared item (movies the user has seen only when nothing else is
left), so a restricted user still gets 20 whenever the model has 20 such items; with none
at all the service answers 503 and says why, never an empty or unfiltered list.

The work per snapshot (which items are held back, the top-up order) is done once, off the
request path; a request of a restricted user costs a few dozen set lookups, everyone
else's one catalogue lookup.

Three states, each said in /healthz and movierec_adult_filter_enforced:
- enforced: a catalogue read tells which movies are adult and who is a minor;
- waiting: serve has a catalogue (--store) but has not read one yet (not written, no
  movies, unreadable): nobody's age nor any movie's flag is known, so every user but
  those of unknown age that `--adult-for-unknown-age` lets through gets a 503;
- unenforced: serve has no catalogue at all (no --store), so the rule cannot hold and it
  says so (a warning at start, /healthz, the gauge at 0), never a silent pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from movierec.models.base import LIST_LENGTH

if TYPE_CHECKING:
    from movierec.serving.snapshot import Snapshot

ADULT_AGE = 18  # the catalogue's age from which adult movies may be recommended
ENFORCED = "enforced"
WAITING = "waiting"
UNENFORCED = "unenforced"


def restricted(age: int, allow_unknown_age: bool) -> bool:
    """Whether adult movies are kept from a user of this catalogue age (-1: unknown)."""
    if age < 0:
        return not allow_unknown_age
    return age < ADULT_AGE


@dataclass(frozen=True)
class AdultItems:
    """One snapshot's items as the rule sees them (computed once per version and read)."""

    held: frozenset[int]  # item indices not cleared: marked adult, or not known not to be
    fallback: tuple[int, ...]  # every cleared item: the snapshot's popular ones first


def adult_items(
    items: Sequence[bytes], popular: np.ndarray, cleared: frozenset[bytes]
) -> AdultItems:
    """Which of `items` (movie ids as answered) are not among `cleared`, and the top-up
    order of those that are."""
    held = frozenset(i for i, movie in enumerate(items) if movie not in cleared)
    first = [i for i in dict.fromkeys(popular.tolist()) if 0 <= i < len(items)]
    first = [i for i in first if i not in held]
    placed = set(first)
    rest = [i for i in range(len(items)) if i not in held and i not in placed]
    return AdultItems(held, tuple(first + rest))


def choose(
    ranked: np.ndarray,
    held: frozenset[int],
    fallback: Iterable[int],
    seen: frozenset[int] | set[int] = frozenset(),
) -> tuple[list[int], int]:
    """Up to 20 items: `ranked`'s best first, none held nor twice, topped up from
    `fallback` (which holds no held item) when fewer remain, items the user has not `seen`
    first; and how many held items the unfiltered answer (Snapshot.body) would have shown."""
    chosen: list[int] = []
    taken: set[int] = set()
    filtered = shown = 0
    for i in ranked.tolist():
        if i < 0:
            continue
        if i in held:
            filtered += shown < LIST_LENGTH
        elif i not in taken:
            taken.add(i)
            chosen.append(i)
            if len(chosen) == LIST_LENGTH:
                return chosen, filtered
        shown += 1
    for pass_over_seen in (False, True):  # a seen item only when nothing else is left
        for i in fallback:
            if i not in taken and (i in seen) == pass_over_seen:
                taken.add(i)
                chosen.append(i)
                if len(chosen) == LIST_LENGTH:
                    return chosen, filtered
    return chosen, filtered


class AdultRule:
    """What one catalogue read says: the movies marked adult and the movies cleared (marked
    not adult), the rule's state (enforced, waiting or unenforced, with why), and each
    answering snapshot's AdultItems. A waiting rule clears nothing, so it holds every movie.

    The loader thread makes a rule and warms it for the snapshots it installs; a request
    that meets a version not warmed yet computes it then (a dict write the GIL keeps whole).
    """

    def __init__(
        self, adult: frozenset[str], cleared: frozenset[str], state: str = ENFORCED
    ) -> None:
        self.adult = adult
        self.cleared = cleared
        self.state = state
        self.note: str | None = None  # e.g. the catalogue unreadable since its last read
        self._encoded = frozenset(m.encode() for m in cleared)
        self._by_version: dict[str, AdultItems] = {}

    @classmethod
    def of_flags(cls, ids: Iterable[str], adult: Iterable[int]) -> AdultRule:
        """The rule of a catalogue's flags (1 adult, 0 not, -1 not said): only 0 clears."""
        marked: set[str] = set()
        cleared: set[str] = set()
        for movie, flag in zip(ids, adult, strict=True):
            if flag == 1:
                marked.add(movie)
            elif flag == 0:
                cleared.add(movie)
        return cls(frozenset(marked), frozenset(cleared))

    @classmethod
    def waiting(cls, why: str) -> AdultRule:
        return cls(frozenset(), frozenset(), f"{WAITING}: {why}")

    @classmethod
    def unenforced(cls, why: str) -> AdultRule:
        return cls(frozenset(), frozenset(), f"{UNENFORCED}: {why}")

    @property
    def enforced(self) -> bool:
        """Whether a catalogue read tells which movies are adult and who is a minor."""
        return self.state == ENFORCED

    @property
    def filters(self) -> bool:
        """Whether restricted users' answers are filtered (enforced or waiting)."""
        return not self.state.startswith(UNENFORCED)

    def same_flags(self, other: AdultRule) -> bool:
        return self.adult == other.adult and self.cleared == other.cleared

    def items_of(self, snapshot: Snapshot) -> AdultItems:
        found = self._by_version.get(snapshot.version)
        if found is None:
            found = adult_items(snapshot.items, snapshot.popular, self._encoded)
            self._by_version[snapshot.version] = found
        return found

    def keep_only(self, snapshots: Iterable[Snapshot]) -> None:
        """Compute the items of the snapshots answering now and forget every other version's."""
        if self.filters:
            self._by_version = {s.version: self.items_of(s) for s in snapshots}

    def body(self, snapshot: Snapshot, user: int, ranked: np.ndarray) -> tuple[bytes, int]:
        """A restricted user's answer from `ranked` (empty: nothing is cleared); and the
        held items it left out."""
        found = self.items_of(snapshot)
        chosen, filtered = choose(ranked, found.held, ())
        if len(chosen) < LIST_LENGTH:  # rare: topped up, with what the user has not seen
            seen = set(snapshot.history(user).tolist())
            chosen, filtered = choose(ranked, found.held, found.fallback, seen)
        names = snapshot.items
        return b",".join([names[i] for i in chosen]), filtered

    def describe(self, allow_unknown_age: bool) -> dict[str, object]:
        """The rule as /healthz shows it."""
        state: dict[str, object] = {
            "adult_filter": self.state,
            "adult_movies": len(self.adult) if self.enforced else None,
            "cleared_movies": len(self.cleared) if self.enforced else None,
            "minimum_age": ADULT_AGE,
            "unknown_age": "allowed" if allow_unknown_age else "restricted",
        }
        if self.note:
            state["note"] = self.note
        return state
