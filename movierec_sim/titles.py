"""Titles that read like real movie titles, with the punctuation the slug rule must handle."""

from __future__ import annotations

import numpy as np

from movierec.ids import slugify

_ADJECTIVES = (
    "Last Lost Dark Silent Broken Hidden Golden Wild Secret Crimson Eternal Forgotten "
    "Final Little Big Long Cold Burning Frozen Sweet Bitter Empty Electric Invisible "
    "Perfect Quiet Dangerous Beautiful Savage Midnight Distant Endless Hollow Lonely "
    "Royal Sacred Shadow Strange Violent Wicked Young Blue Red Black White Green Iron "
    "Glass Paper Velvet Stolen"
).split()
_NOUNS = (
    "Night Road River City Garden Heart Storm Kingdom Mirror Island House Summer Winter "
    "Promise Dream Game Empire Witness Stranger Journey Shadow Horizon Ocean Desert "
    "Mountain Letter Song Voice Fire Rain Sky Star Moon Sun Hunter Soldier Thief Queen "
    "King Prince Daughter Son Father Mother Brother Sister Wife Husband Lover Friend "
    "Ghost Angel Devil Machine Planet Code Signal Border Harbor Station Train Bridge "
    "Tower Castle Forest Valley Secret Memory Silence Truth Lie Revenge Honor Crossing "
    "Escape Return Legacy Affair"
).split()
_NAMES = (
    "Anna Max Julia Leo Maria Jack Sophie Daniel Clara Victor Elena Oscar Rosa Hugo Lucy "
    "Frank Nora Paul Grace Tom Alice Sam Emma Henry Lily Marcus Zoe Peter Iris Diego"
).split()
# Names that carry letters outside ASCII: the slug rule drops those letters.
_ACCENTED = (
    "Amélie Zoë Renée José Müller Léon Chloé Sørensen Núñez Björn Françoise Ælfred Éclair "
    "Crème Señor Niño Garçon Mañana Déjà Über"
).split()
_PLACES = (
    "Paris Tokyo Berlin Rome Cairo Vienna Havana Memphis Brooklyn Casablanca Lisbon Oslo "
    "Chicago Dublin Marseille Saigon Texas Alaska Nevada Sicily"
).split()
_ROMAN = ("II", "III", "IV", "V")


def _pick(rng: np.random.Generator, words: tuple[str, ...] | list[str]) -> str:
    return words[int(rng.integers(len(words)))]


def _title(rng: np.random.Generator) -> str:
    a, n, n2 = _pick(rng, _ADJECTIVES), _pick(rng, _NOUNS), _pick(rng, _NOUNS)
    name, place = _pick(rng, _NAMES), _pick(rng, _PLACES)
    pattern = int(rng.integers(22))
    match pattern:
        case 0 | 1:
            return f"The {a} {n}"
        case 2:
            return f"{a} {n}"
        case 3:
            return f"{n} of the {n2}"
        case 4:
            return f"{name}'s {n}"  # apostrophe: dropped
        case 5:
            return f"{n}: {a} {n2}"  # colon: dropped
        case 6:
            return f"{n}, {n2} and {name}"  # comma: becomes '_'
        case 7:
            return f"{a} {n} {_pick(rng, _ROMAN)}"
        case 8:
            return f"Mr. {name}'s {n}"  # period kept
        case 9:
            return f"{n} in {place}"
        case 10:
            return f"{_pick(rng, _ACCENTED)} and the {n}"  # non-ASCII letters dropped
        case 11:
            return f"{a}-{n}"  # hyphen kept
        case 12:
            return f"{name} - The {a} {n}"
        case 13:
            return f"{n[0]}.{n2[0]}. the {a} {n}"  # initials like "E.T."
        case 14:
            return f"{'*'.join(n.upper()[:4])}"  # like "M*A*S*H"
        case 15:
            return f"{_pick(rng, _ACCENTED)} {n}"
        case 16:
            return f"À {a} {n}"  # leading non-ASCII: id starts with '+'
        case 17:
            return f"{n}!"
        case 18:
            return f"{a} {n}: Part {int(rng.integers(1, 4))}"
        case 19:
            return f"{n} & {n2}"  # '&' dropped: two '+' in a row
        case 20:
            return f"Who Killed {name}?"
        case _:
            return f"{name} and {_pick(rng, _NAMES)}"


def generate_titles(
    rng: np.random.Generator, years: np.ndarray
) -> tuple[list[str], list[str], np.ndarray]:
    """Titles and unique slug ids for movies with the given release years (0 = unknown).

    Returns (titles, ids, years); a year may be moved by one when title and year collide,
    since the site's ids must be unique.
    """
    years = years.copy()
    seen: set[str] = set()
    titles: list[str] = []
    ids: list[str] = []
    for index in range(len(years)):
        for attempt in range(1000):
            title = _title(rng)
            year = int(years[index])
            if attempt > 20 and year:
                year += int(rng.integers(-3, 4))  # crowded combination: a remake another year
            slug = slugify(title, year or None)
            if slug not in seen:
                break
        else:  # pragma: no cover - 1000 collisions would mean the vocabulary is far too small
            raise RuntimeError("could not find a unique movie title")
        seen.add(slug)
        titles.append(title)
        ids.append(slug)
        years[index] = year
    return titles, ids, years
