"""Movie ids (slugs) and user ids, by the site's rules (SPEC section 3)."""

from __future__ import annotations

import re
import unicodedata

# Characters a slug keeps as they are; everything else except the handled cases is dropped.
_KEPT = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-*")

MOVIE_ID_PATTERN = r"[a-z0-9+_.*\-]*\+(?:[0-9]{4})?"
_MOVIE_ID_RE = re.compile(MOVIE_ID_PATTERN)
MAX_MOVIE_ID_LENGTH = 250

# The site's user ids are positive integers; anything past this is garbage, not a user.
MAX_USER_ID = 2**31 - 1


def slugify(title: str, year: int | None) -> str:
    """The site's movie id for a title and release year (None: no year, id ends in '+')."""
    out: list[str] = []
    for ch in title.lower():
        if ch == " ":
            out.append("+")
        elif ch == ",":
            out.append("_")
        elif ch in _KEPT:
            out.append(ch)
        # apostrophes, colons, other punctuation and non-ASCII letters are dropped
    out.append("+")
    if year is not None:
        out.append(f"{year:04d}")
    return "".join(out)


def is_movie_id(text: str) -> bool:
    return len(text) <= MAX_MOVIE_ID_LENGTH and _MOVIE_ID_RE.fullmatch(text) is not None


def parse_user_id(text: str) -> int | None:
    """The user id in text, or None when text is not a plain positive integer in range."""
    if not text or len(text) > 10 or not text.isascii() or not text.isdigit():
        return None
    if text[0] == "0":
        return None
    value = int(text)
    return value if 0 < value <= MAX_USER_ID else None


def ascii_fold(text: str) -> str:
    """Drop accents where a plain ASCII letter exists (for human-readable display only)."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
