import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from movierec.ids import is_movie_id, parse_user_id, slugify

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
