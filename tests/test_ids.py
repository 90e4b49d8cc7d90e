import string

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from movierec.ids import find_in_sorted, index_in_sorted, is_movie_id, parse_user_id, slugify

SPEC_EXAMPLES = [
    ("Crouching Tiger, Hidden Dragon", 2000, "crouching+tiger_+hidden+dragon+2000"),
    ("Schindler's List", 1993, "schindlers+list+1993"),
    ("Les Misérables", 1998, "les+misrables+1998"),
    ("WALL·E", 2008, "walle+2008"),
    ("À la Mode", 1993, "+la+mode+1993"),
    ("Mr. Holland's Opus", 1995, "mr.+hollands+opus+1995"),
    ("E.T. the Extra-Terrestrial", 1982, "e.t.+the+extra-terrestrial+1982"),
    ("M*A*S*H", 1970, "m*a*s*h+1970"),
    (
        "Star Wars: Episode I - The Phantom Menace",
        1999,
        "star+wars+episode+i+-+the+phantom+menace+1999",
    ),
    ("Padre Nuestro", 2007, "padre+nuestro+2007"),
    ("12 Years a Slave", 2013, "12+years+a+slave+2013"),
]


@pytest.mark.parametrize(("title", "year", "expected"), SPEC_EXAMPLES)
def test_slug_matches_every_spec_example(title: str, year: int, expected: str) -> None:
    assert slugify(title, year) == expected
    assert is_movie_id(expected)


def test_slug_without_year_ends_in_plus() -> None:
    assert slugify("Nameless", None) == "nameless+"
    assert is_movie_id("nameless+")


@pytest.mark.parametrize(
    "bad",
    ["the+rock +1996", "aDdjc1gioFamIk7", "a,b+1999", "", "x+19999", "Up+2009", "noyear", "é+2000"],
)
def test_ids_the_rule_cannot_produce_are_rejected(bad: str) -> None:
    assert not is_movie_id(bad)


@given(st.text(max_size=60), st.one_of(st.none(), st.integers(1000, 9999)))
def test_every_slug_uses_only_the_allowed_alphabet(title: str, year: int | None) -> None:
    slug = slugify(title, year)
    assert set(slug) <= set(string.ascii_lowercase + string.digits + "+_.-*")
    assert "," not in slug and " " not in slug
    assert is_movie_id(slug)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 1),
        ("220358", 220358),
        ("0", None),
        ("-1", None),
        ("01", None),
        ("abc", None),
        ("9" * 25, None),
        ("", None),
        ("१२", None),
        ("2147483648", None),
        (" 1", None),
    ],
)
def test_user_ids_are_plain_positive_integers(text: str, expected: int | None) -> None:
    assert parse_user_id(text) == expected


def first_positions(keys: list) -> dict:
    """The obviously right answer: where each key first occurs."""
    positions: dict = {}
    for at, key in enumerate(keys):
        positions.setdefault(key, at)
    return positions


# Keys sorted (with repeats), and queries drawn around them: present, absent, below the
# first and past the last key, repeated.
@st.composite
def keys_and_queries(
    draw: st.DrawFn, elements: st.SearchStrategy, dtype: type
) -> tuple[list, list, type]:
    keys = sorted(draw(st.lists(elements, max_size=30)))
    others = st.sampled_from(keys) if keys else elements
    queries = draw(st.lists(st.one_of(elements, others), max_size=40))
    return keys, queries + queries[: draw(st.integers(0, len(queries)))], dtype


SMALL_INTS = st.integers(-20, 20)
# Prefixes of one another ("a", "ab") and the empty id, where a string compare could slip.
SLUGS = st.text(alphabet="ab+1", max_size=4)


@given(st.one_of(keys_and_queries(SMALL_INTS, np.int64), keys_and_queries(SLUGS, str)))
def test_lookup_agrees_with_a_dict(case: tuple[list, list, type]) -> None:
    keys, queries, dtype = case
    expected = first_positions(keys)
    # Each array its own width: a query longer than every key must not be cut to fit.
    key_array, query_array = np.array(keys, dtype=dtype), np.array(queries, dtype=dtype)
    position, found = find_in_sorted(key_array, query_array)
    assert position.shape == found.shape == (len(queries),)
    assert found.tolist() == [q in expected for q in queries]
    assert position[found].tolist() == [expected[q] for q in queries if q in expected]
    # Misses still index safely into the keys.
    assert ((position >= 0) & (position < max(len(keys), 1))).all()
    want = [expected.get(q, -1) for q in queries]
    assert index_in_sorted(key_array, query_array).tolist() == want
    assert [index_in_sorted(key_array, q) for q in queries] == want


def test_lookup_in_empty_keys_finds_nothing() -> None:
    position, found = find_in_sorted(np.empty(0, np.int64), np.array([1, 2, 1]))
    assert position.tolist() == [0, 0, 0] and found.tolist() == [False] * 3
    assert index_in_sorted(np.empty(0, np.int64), np.array([5])).tolist() == [-1]
    assert index_in_sorted(np.empty(0, np.int64), 5) == -1


def test_lookup_of_no_ids_and_of_numpy_scalars() -> None:
    keys = np.array([3, 7, 9], dtype=np.int64)
    assert index_in_sorted(keys, np.empty(0, np.int64)).shape == (0,)
    assert index_in_sorted(keys, np.int64(9)) == 2
    assert type(index_in_sorted(keys, np.int32(7))) is int
    assert index_in_sorted(keys, 10) == -1 and index_in_sorted(keys, 2) == -1
