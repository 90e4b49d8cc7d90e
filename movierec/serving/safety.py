"""Keeping adult movies from minors: who is restricted, which of a snapshot's items are
adult, and an answer without them.

The rule: a movie the catalogue marks adult is never recommended to a user the catalogue
says is under 18, nor to a user of unknown age (not in the catalogue, or without an age)
unless `movierec serve --adult-for-unknown-age` allows it. It is applied where an answer is
made from a ranked list (RecommendationService.answer), so it holds for every source
(fresh, model, segment, popular) and every experiment arm alike, and a movie the catalogue
newly marks adult is kept out from its next read on, without rebuilding any list.

A list the filter shortens below 20 is topped up with the snapshot's most popular items
that are not adult, then every other item that is not (movies the user has seen only when
nothing else is left), so a restricted user still gets 20 whenever the model has 20 such
items. A movie the catalogue does not know, or whose adult flag the API did not give, is
not marked adult: the rule follows what the catalogue says (the audit counts such movies).

The work per snapshot (which items are adult, the top-up order) is done once, off the
request path; a request of a restricted user costs a few dozen set lookups, everyone
else's one catalogue lookup.

Without a catalogue the service cannot know which movies are adult nor who is a minor: the
rule is then unenforced, and says so (a warning at start, /healthz, and
movierec_adult_filter_enforced 0), never a silent pass.
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


def restricted(age: int, allow_unknown_age: bool) -> bool:
    """Whether adult movies are kept from a user of this catalogue age (-1: unknown)."""
    if age < 0:
        return not allow_unknown_age
    return age < ADULT_AGE


@dataclass(frozen=True)
class AdultItems:
    """One snapshot's items as the rule sees them (computed once per version and read)."""

    adult: frozenset[int]  # item indices the catalogue marks adult
    fallback: tuple[int, ...]  # every other item: the snapshot's popular ones first


def adult_items(
    items: Sequence[bytes], popular: np.ndarray, movies: frozenset[bytes]
) -> AdultItems:
    """Which of `items` (movie ids as answered) are among `movies`, and the top-up order."""
    adult = frozenset(i for i, movie in enumerate(items) if movie in movies)
    first = [i for i in dict.fromkeys(popular.tolist()) if 0 <= i < len(items)]
    first = [i for i in first if i not in adult]
    placed = set(first)
    rest = [i for i in range(len(items)) if i not in adult and i not in placed]
    return AdultItems(adult, tuple(first + rest))


def choose(
    ranked: np.ndarray,
    adult: frozenset[int],
    fallback: Iterable[int],
    seen: frozenset[int] | set[int] = frozenset(),
) -> tuple[list[int], int]:
    """Up to 20 items: `ranked`'s best first, none adult nor twice, topped up from
    `fallback` (which holds no adult item) when fewer remain, items the user has not `seen`
    first; and how many adult items the unfiltered answer (Snapshot.body) would have shown."""
    chosen: list[int] = []
    taken: set[int] = set()
    filtered = shown = 0
    for i in ranked.tolist():
        if i < 0:
            continue
        if i in adult:
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
    """What the catalogue marks adult, as of one read (None: no catalogue read, so the rule
    is unenforced, and `state` says why), and each answering snapshot's AdultItems.

    The loader thread makes a rule and warms it for the snapshots it installs; a request
    that meets a version not warmed yet computes it then (a dict write the GIL keeps whole).
    """

    def __init__(self, movies: frozenset[str] | None, state: str = ENFORCED) -> None:
        self.movies = movies
        self.state = state if movies is None else ENFORCED
        self.note: str | None = None  # e.g. the catalogue unreadable since its last read
        self._encoded = frozenset(m.encode() for m in movies or ())
        self._by_version: dict[str, AdultItems] = {}

    @classmethod
    def unenforced(cls, why: str) -> AdultRule:
        return cls(None, f"unenforced: {why}")

    @property
    def enforced(self) -> bool:
        return self.movies is not None

    def items_of(self, snapshot: Snapshot) -> AdultItems:
        found = self._by_version.get(snapshot.version)
        if found is None:
            found = adult_items(snapshot.items, snapshot.popular, self._encoded)
            self._by_version[snapshot.version] = found
        return found

    def keep_only(self, snapshots: Iterable[Snapshot]) -> None:
        """Compute the items of the snapshots answering now and forget every other version's."""
        if self.enforced:
            self._by_version = {s.version: self.items_of(s) for s in snapshots}

    def body(self, snapshot: Snapshot, user: int, ranked: np.ndarray) -> tuple[bytes, int]:
        """A restricted user's answer from `ranked`; and the adult items it left out."""
        found = self.items_of(snapshot)
        chosen, filtered = choose(ranked, found.adult, ())
        if len(chosen) < LIST_LENGTH:  # rare: topped up, with what the user has not seen
            seen = set(snapshot.history(user).tolist())
            chosen, filtered = choose(ranked, found.adult, found.fallback, seen)
        names = snapshot.items
        return b",".join([names[i] for i in chosen]), filtered

    def describe(self, allow_unknown_age: bool) -> dict[str, object]:
        """The rule as /healthz shows it."""
        state: dict[str, object] = {
            "adult_filter": self.state,
            "adult_movies": None if self.movies is None else len(self.movies),
            "minimum_age": ADULT_AGE,
            "unknown_age": "allowed" if allow_unknown_age else "restricted",
        }
        if self.note:
            state["note"] = self.note
        return state
