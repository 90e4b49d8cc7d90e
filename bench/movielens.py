"""MovieLens 100K, read straight out of the recbole wheel on PyPI, with SPEC movie ids.

The wheel (recbole-1.2.1-py3-none-any.whl) ships the data set as three tab-separated
files under recbole/dataset_example/ml-100k/. It is fetched with pip itself, so the
download goes through the ordinary client and its hash checks, and it is never installed:
the files are read with zipfile. The counts are checked against the published ones
(100,000 ratings, 943 users, 1,682 movies) and any difference stops the benchmark, since
every figure downstream would silently mean something else.

Movie ids follow SPEC section 3. MovieLens writes "Usual Suspects, The" and adds alternate
titles in parentheses; the SPEC's own examples built from MovieLens titles
(`les+misrables+1998` from "Misérables, Les", `crouching+tiger_+hidden+dragon+2000`
without "(Wo hu cang long)") show the article moved back to the front and the
parenthesised alternate dropped, so that is done here too.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from movierec.ids import is_movie_id

WHEEL_REQUIREMENT = "recbole==1.2.1"
WHEEL_NAME = "recbole-1.2.1-py3-none-any.whl"
MEMBER_DIR = "recbole/dataset_example/ml-100k/"
INTER_HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float"
ITEM_HEADER_START = "item_id:token\tmovie_title:token_seq\trelease_year:token"
EXPECTED = {"ratings": 100_000, "users": 943, "movies": 1_682}
DEFAULT_CACHE = Path.home() / ".cache" / "movierec" / "datasets"

# Articles MovieLens moves behind a comma ("Boot, Das"); only these, so that "Paris, Texas"
# or "Murder, My Sweet" keep their comma. "L'" joins its noun without a space.
ARTICLES = ("The", "A", "An", "Les", "La", "Le", "L'", "Il", "Das", "Der", "Die", "El")
_TRAILING_PARENS = re.compile(r"\s*\([^()]*\)\s*$")
_YEAR_IN_TITLE = re.compile(r"\((\d{4})\)")
_KEPT = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-*")


class DatasetMismatchError(RuntimeError):
    """The wheel does not hold the MovieLens 100K this benchmark was written for."""


@dataclass(frozen=True)
class MovieLens:
    """Ratings in file order and one SPEC movie id per MovieLens item id."""

    user: np.ndarray  # int64 MovieLens user ids (1..943), also the site's user ids
    item: np.ndarray  # int64 MovieLens item ids (1..1682)
    rating: np.ndarray  # int8, 1..5
    timestamp: np.ndarray  # int64 seconds since the epoch, UTC
    movie_ids: dict[int, str]  # item id -> SPEC movie id, unique
    titles: dict[int, str]  # item id -> the title as the file has it
    wheel_sha256: str

    def movie_column(self) -> np.ndarray:
        """The SPEC movie id of every rating, in file order."""
        table = np.array([self.movie_ids.get(i, "") for i in range(int(self.item.max()) + 1)])
        return table[self.item]


def rate_lines(data: MovieLens, rows: np.ndarray) -> list[str]:
    """The chosen ratings as SPEC rate lines (`<time>,<userid>,GET /rate/<movieid>=<rating>`,
    time in UTC to the second), in time order, file order breaking ties: the order the
    site would have logged them in."""
    rows = np.asarray(rows)[np.lexsort((rows, data.timestamp[rows]))]
    times = np.datetime_as_string(data.timestamp[rows].astype("datetime64[s]"), unit="s")
    movies = data.movie_column()[rows]
    return [
        f"{when},{user},GET /rate/{movie}={stars}"
        for when, user, movie, stars in zip(
            times, data.user[rows], movies, data.rating[rows], strict=True
        )
    ]


def fetch_wheel(cache: Path = DEFAULT_CACHE) -> Path:
    """The wheel in `cache`, downloaded by pip (no dependencies, not installed) if absent."""
    wheel = cache / WHEEL_NAME
    if not wheel.exists():
        cache.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", WHEEL_REQUIREMENT]
        subprocess.run([*command, "-d", str(cache)], check=True, stdout=sys.stderr)
    if not wheel.exists():
        raise DatasetMismatchError(f"pip did not leave {WHEEL_NAME} in {cache}")
    return wheel


def read_wheel(wheel: Path) -> MovieLens:
    """Parse ml-100k.inter and ml-100k.item out of the wheel and check the counts."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for suffix in ("inter", "item", "user"):
            if f"{MEMBER_DIR}ml-100k.{suffix}" not in names:
                raise DatasetMismatchError(f"{wheel.name} has no {MEMBER_DIR}ml-100k.{suffix}")
        inter = archive.read(f"{MEMBER_DIR}ml-100k.inter").decode("utf-8")
        items = archive.read(f"{MEMBER_DIR}ml-100k.item").decode("utf-8")
        users = archive.read(f"{MEMBER_DIR}ml-100k.user").decode("utf-8")
    user, item, rating, timestamp = parse_inter(inter)
    titles, years = parse_items(items)
    data = MovieLens(
        user=user,
        item=item,
        rating=rating,
        timestamp=timestamp,
        movie_ids=unique_movie_ids(titles, years),
        titles=titles,
        wheel_sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(),
    )
    verify(data, user_rows=len(users.splitlines()) - 1)
    return data


def parse_inter(text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(user, item, rating, timestamp) columns of ml-100k.inter, in file order."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != INTER_HEADER:
        raise DatasetMismatchError(f"unexpected ml-100k.inter header: {lines[:1]!r}")
    rows = [line.split("\t") for line in lines[1:] if line.strip()]
    bad = [i for i, row in enumerate(rows) if len(row) != 4]
    if bad:
        raise DatasetMismatchError(f"ml-100k.inter row {bad[0] + 1} has not 4 fields")
    columns = list(zip(*rows, strict=True)) if rows else [(), (), (), ()]
    user, item = (np.array(c, dtype=np.int64) for c in columns[:2])
    rating = np.array(columns[2], dtype=np.float64)
    timestamp = np.array(columns[3], dtype=np.float64)
    if not np.isin(rating, np.arange(1, 6)).all():
        raise DatasetMismatchError("ml-100k.inter holds ratings outside the integers 1 to 5")
    return user, item, rating.astype(np.int8), timestamp.astype(np.int64)


def parse_items(text: str) -> tuple[dict[int, str], dict[int, int | None]]:
    """(title, release year) per item id from ml-100k.item."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith(ITEM_HEADER_START):
        raise DatasetMismatchError(f"unexpected ml-100k.item header: {lines[:1]!r}")
    titles: dict[int, str] = {}
    years: dict[int, int | None] = {}
    for line in lines[1:]:
        if not line.strip():
            continue
        fields = line.split("\t")
        item, title, year = int(fields[0]), fields[1].strip(), fields[2].strip()
        titles[item] = title
        # One row has its year only inside the title ("... (1995)" with year "V").
        found = _YEAR_IN_TITLE.search(title)
        if re.fullmatch(r"\d{4}", year):
            years[item] = int(year)
        else:
            years[item] = int(found[1]) if found else None
    return titles, years


def display_title(title: str) -> str:
    """ "Usual Suspects, The (alt)" -> "The Usual Suspects": the title as the site shows it."""
    while (stripped := _TRAILING_PARENS.sub("", title)) != title and stripped:
        title = stripped
    head, comma, last = title.rpartition(", ")
    if comma and head and last in ARTICLES:
        title = last + ("" if last.endswith("'") else " ") + head
    return title


def slug(title: str, year: int | None) -> str:
    """SPEC section 3, from the rule's text: lower case, spaces as '+', commas as '_',
    periods, hyphens and asterisks kept, everything else (apostrophes, colons, other
    punctuation, letters outside ASCII) dropped, then '+' and the year (none: ends in '+').
    No collapsing of '+' runs: the SPEC's `+la+mode+1993` keeps the one a dropped 'À' left.
    The mis-decoded accents in the file ("MisÃ©rables") are non-ASCII, so they drop too."""
    out = []
    for ch in title.lower():
        if ch == " ":
            out.append("+")
        elif ch == ",":
            out.append("_")
        elif ch in _KEPT:
            out.append(ch)
    return "".join(out) + "+" + (f"{year:04d}" if year is not None else "")


def unique_movie_ids(titles: dict[int, str], years: dict[int, int | None]) -> dict[int, str]:
    """A SPEC id per item; MovieLens lists a few movies twice under two item ids (the two
    "Ice Storm, The (1997)"), and the site needs distinct ids, so the later item id gets a
    number before its year: `the+ice+storm+2+1997`."""
    ids: dict[int, str] = {}
    taken: set[str] = set()
    for item in sorted(titles):
        year = years[item]
        base = slug(display_title(titles[item]), year)
        candidate, n = base, 1
        while candidate in taken:
            n += 1
            stem = base[: -len(str(year))] if year is not None else base
            candidate = f"{stem}{n}+{year if year is not None else ''}"
        taken.add(candidate)
        ids[item] = candidate
    return ids


def verify(data: MovieLens, user_rows: int | None = None) -> None:
    """Fail loudly unless this is MovieLens 100K as published."""
    found = {
        "ratings": len(data.rating),
        "users": len(np.unique(data.user)),
        "movies": len(np.unique(data.item)),
    }
    problems = [f"{k}: {found[k]} (expected {v})" for k, v in EXPECTED.items() if found[k] != v]
    if user_rows is not None and user_rows != EXPECTED["users"]:
        problems.append(f"ml-100k.user rows: {user_rows} (expected {EXPECTED['users']})")
    if len(data.movie_ids) != EXPECTED["movies"]:
        problems.append(f"ml-100k.item rows: {len(data.movie_ids)}")
    missing = set(np.unique(data.item).tolist()) - set(data.movie_ids)
    if missing:
        problems.append(f"{len(missing)} rated items have no title row")
    pairs = data.user * 10_000 + data.item
    if len(np.unique(pairs)) != len(pairs):
        problems.append("a (user, movie) pair is rated twice")
    invalid = [m for m in data.movie_ids.values() if not is_movie_id(m)]
    if invalid:
        problems.append(f"{len(invalid)} ids break SPEC section 3, e.g. {invalid[0]!r}")
    if len(set(data.movie_ids.values())) != len(data.movie_ids):
        problems.append("movie ids are not unique")
    if problems:
        raise DatasetMismatchError("not the MovieLens 100K expected: " + "; ".join(problems))
