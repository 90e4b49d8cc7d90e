"""Fixed vocabularies of the site's API (SPEC section 2): occupations, genres, languages."""

from __future__ import annotations

# MovieLens-1M occupations, with their share of ML-1M users (drives the simulated world).
OCCUPATIONS: tuple[str, ...] = (
    "academic/educator",
    "artist",
    "clerical/admin",
    "college/grad student",
    "customer service",
    "doctor/health care",
    "executive/managerial",
    "farmer",
    "homemaker",
    "K-12 student",
    "lawyer",
    "programmer",
    "retired",
    "sales/marketing",
    "scientist",
    "self-employed",
    "technician/engineer",
    "tradesman/craftsman",
    "unemployed",
    "writer",
    "other or not specified",
)
OCCUPATION_SHARES: tuple[float, ...] = (
    0.086, 0.045, 0.028, 0.126, 0.019, 0.039, 0.112, 0.003, 0.015, 0.032, 0.022,
    0.064, 0.024, 0.050, 0.024, 0.035, 0.083, 0.012, 0.012, 0.047, 0.127,
)  # fmt: skip

GENDERS: tuple[str, ...] = ("M", "F")

# TMDB genre ids and names.
GENRES: tuple[tuple[int, str], ...] = (
    (28, "Action"),
    (12, "Adventure"),
    (16, "Animation"),
    (35, "Comedy"),
    (80, "Crime"),
    (99, "Documentary"),
    (18, "Drama"),
    (10751, "Family"),
    (14, "Fantasy"),
    (36, "History"),
    (27, "Horror"),
    (10402, "Music"),
    (9648, "Mystery"),
    (10749, "Romance"),
    (878, "Science Fiction"),
    (10770, "TV Movie"),
    (53, "Thriller"),
    (10752, "War"),
    (37, "Western"),
)
# How often each genre is attached to a movie (relative weights, roughly TMDB's catalogue).
GENRE_WEIGHTS: tuple[float, ...] = (
    0.09, 0.05, 0.03, 0.14, 0.06, 0.04, 0.20, 0.03, 0.03, 0.02, 0.05,
    0.02, 0.03, 0.07, 0.04, 0.01, 0.08, 0.02, 0.01,
)  # fmt: skip

# (iso_639_1, English name, share of movies)
LANGUAGES: tuple[tuple[str, str, float], ...] = (
    ("en", "English", 0.72),
    ("fr", "Français", 0.06),
    ("es", "Español", 0.04),
    ("de", "Deutsch", 0.03),
    ("it", "Italiano", 0.03),
    ("ja", "日本語", 0.04),
    ("ko", "한국어/조선말", 0.02),
    ("zh", "普通话", 0.02),
    ("hi", "हिन्दी", 0.02),
    ("sv", "svenska", 0.02),
)

COUNTRIES: tuple[tuple[str, str], ...] = (
    ("US", "United States of America"),
    ("FR", "France"),
    ("ES", "Spain"),
    ("DE", "Germany"),
    ("IT", "Italy"),
    ("JP", "Japan"),
    ("KR", "South Korea"),
    ("CN", "China"),
    ("IN", "India"),
    ("SE", "Sweden"),
    ("GB", "United Kingdom"),
    ("CA", "Canada"),
)

AGE_GROUPS: tuple[tuple[int, int, str], ...] = (
    (0, 17, "under 18"),
    (18, 24, "18-24"),
    (25, 34, "25-34"),
    (35, 44, "35-44"),
    (45, 54, "45-54"),
    (55, 200, "55+"),
)


def age_group(age: int) -> int:
    for index, (low, high, _) in enumerate(AGE_GROUPS):
        if low <= age <= high:
            return index
    return len(AGE_GROUPS) - 1
